from warpagent.cli import main

raise SystemExit(main())
