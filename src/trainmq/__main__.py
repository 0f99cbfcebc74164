from trainmq.cli.main import main

main()
