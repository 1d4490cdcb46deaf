from edgeav.cli import main

main()
