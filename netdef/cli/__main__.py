from netdef.cli import main

main()
