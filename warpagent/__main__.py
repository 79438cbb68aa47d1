from warpagent.cli.main import main

raise SystemExit(main())
