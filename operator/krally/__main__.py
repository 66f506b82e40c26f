from krally.cli import main

raise SystemExit(main())
