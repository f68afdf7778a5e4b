from sauron.cli import main

raise SystemExit(main())
