from capo_lab.cli import main

main()
