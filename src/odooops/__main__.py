from odooops.cli.main import main

main()
