"""TensorRT's MNIST network, written by hand with netdef.Network, step by step.

TensorRT's developer guide (TensorRT 7, section 2.2.1 "Creating a Network Definition from
Scratch") builds a small MNIST network with seven steps: create the builder and network, add the
input, a convolution, a pooling layer, fully connected and activation layers, a softmax, and mark
the output. Each step below quotes the guide (its C++ API of the TensorRT 7 era) and shows the
netdef call that does the same today.

The weights are the real ones shipped in weights/lenet_digits.safetensors: LeNet trained on
scikit-learn's handwritten digits. That network repeats the guide's convolution + pooling once
more and ends with a second fully connected layer (TensorRT's MNIST sample), which the guide's
shortened listing leaves out; the extra steps are marked below. The network is assembled ad hoc
(no registered function), so `netdef build` warns that the engine cannot be defined again from
the command line; `architectures/lenet.py` is the same network as a registered definition.

Then the network is checked on the 360 held-out digits with the NumPy reference executor, built
into a TensorRT engine (TensorRT-RTX builds on the CPU), and run on the GPU where one is present.

    python examples/01_mnist_network_by_hand.py [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from netdef import Checkpoint, Network, backend
from netdef.build import BuildConfig, build
from netdef.datasets import digits_split
from netdef.reference import run

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "lenet_digits.safetensors"


def define(checkpoint: Checkpoint) -> Network:
    # Step 1. "创建构造器和网络" -- create the builder and the network:
    #     IBuilder* builder = createInferBuilder(gLogger);
    #     INetworkDefinition* network = builder->createNetworkV2(explicitBatch);
    # netdef.Network creates both (explicit batch is the only mode now; networks are strongly
    # typed, so precision comes from tensor dtypes, not builder flags).
    net = Network(checkpoint, precision="fp32", name="mnist_by_hand")

    # Step 2. "添加输入层到网络" -- add the input layer, "including dynamic batch":
    #     auto data = network->addInput(INPUT_BLOB_NAME, dt, Dims3{-1, 1, INPUT_H, INPUT_W});
    x = net.input("input", (-1, 1, 28, 28))

    # Step 3. "添加卷积层" -- add the convolution layer, with weights for filter and bias:
    #     auto conv1 = network->addConvolution(*data->getOutput(0), 20, DimsHW{5, 5},
    #                                          weightMap["conv1filter"], weightMap["conv1bias"]);
    #     conv1->setStride(DimsHW{1, 1});
    # "注意：传递给TensorRT层的权值在主机内存中" -- the weights passed to TensorRT are in host memory:
    # netdef keeps them alive until the build and names them after their checkpoint keys.
    x = net.conv2d(x, "conv1", 20, kernel_size=5, stride=1)

    # Step 4. "添加池化层" -- add the pooling layer:
    #     auto pool1 = network->addPooling(*conv1->getOutput(0), PoolingType::kMax, DimsHW{2, 2});
    #     pool1->setStride(DimsHW(2, 2));
    x = net.max_pool2d(x, 2, stride=2, name="pool1")

    # (Not in the guide's shortened listing: TensorRT's MNIST sample repeats convolution + pooling.)
    x = net.conv2d(x, "conv2", 50, kernel_size=5)
    x = net.max_pool2d(x, 2, stride=2, name="pool2")

    # Step 5. "添加全连接和激活层" -- add the fully connected and activation layers:
    #     auto ip1 = network->addFullyConnected(*pool1->getOutput(0), 500, weightMap["ip1filter"], ...);
    #     auto relu1 = network->addActivation(*ip1->getOutput(0), ActivationType::kRELU);
    # addFullyConnected is gone since TensorRT 10: net.linear is a matrix multiply with a constant
    # plus a bias add; it needs a flat input first (the guide's FC layer flattened implicitly).
    x = net.flatten(x)
    x = net.relu(net.linear(x, "fc1", 500), name="relu1")

    # (Not in the guide's listing: the second fully connected layer, 500 -> 10 classes.)
    x = net.linear(x, "fc2", 10)

    # Step 6. "添加SoftMax层来计算最终的概率" -- add a softmax layer to compute the probabilities:
    #     auto prob = network->addSoftMax(*relu1->getOutput(0));
    #     prob->getOutput(0)->setName(OUTPUT_BLOB_NAME);
    # TensorRT's default softmax axis depends on the rank (here it would be axis 0, the batch!):
    # netdef asks for the axis explicitly.
    prob = net.softmax(x, dim=1, name="softmax")

    # Step 7. "标记输出" -- mark the output:
    #     network->markOutput(*prob->getOutput(0));
    net.output(prob, "prob")
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Directory for the engine file (default: a temporary one).")
    args = parser.parse_args()

    checkpoint = Checkpoint.load(WEIGHTS)
    net = define(checkpoint)
    net.check()  # raises one CheckpointError listing every missing or misshapen weight
    print(f"defined {net.name}: {net.num_layers} layers, {len(net.weights)} named weights")
    for i in range(net.num_layers):
        layer = net.trt_network.get_layer(i)
        out = layer.get_output(0)
        print(f"  {layer.name:14s} -> {out.name:14s} {tuple(out.shape)}")

    # Check it on the real held-out digits, in NumPy, with TensorRT's layer semantics.
    digits = digits_split()
    result = run(net.trt_network, {"input": digits.x_test})
    predicted = result.outputs["prob"].argmax(axis=1)
    accuracy = float((predicted == digits.y_test).mean())
    print(f"reference executor: {accuracy:.2%} of {len(digits.y_test)} held-out digits correct")
    rows = np.abs(result.outputs["prob"].sum(axis=1) - 1).max()
    print(f"softmax rows sum to 1 within {rows:.1e}")

    # The same network from the architecture registry gives the same probabilities.
    from architectures import get

    registered = get("lenet").build_network(checkpoint, batch=-1)
    same = run(registered.trt_network, {"input": digits.x_test}).outputs["prob"]
    print(f"registered 'lenet' vs this one: max |difference| {np.abs(same - result.outputs['prob']).max():.1e}")

    # Build the engine: one dynamic-batch profile, 1..64 images, optimised for 8.
    caps = backend.capabilities()
    if not caps.can_build:
        print(f"skipped the build: {caps.reason}")
        return
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="netdef_example01_"))
    engine = build(net, BuildConfig(batch=(1, 8, 64)))
    path = engine.save(out_dir / "mnist_by_hand.engine")
    print(f"built {path}: {len(engine.plan) / 2**20:.1f} MiB plan in {engine.metadata['build_seconds']:.2f} s")

    if not caps.can_run:
        print(f"skipped running the engine on the GPU: {caps.reason}")
        return
    from netdef.runtime import run_engine_file

    outputs = run_engine_file(path, {"input": digits.x_test[:64]})
    gpu_accuracy = float((outputs["prob"].argmax(axis=1) == digits.y_test[:64]).mean())
    print(f"GPU engine: {gpu_accuracy:.2%} of the first 64 held-out digits correct")


if __name__ == "__main__":
    main()
