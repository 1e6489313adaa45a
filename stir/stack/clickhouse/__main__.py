from stir.stack.clickhouse.server import main

main()
