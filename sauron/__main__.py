from sauron.commands.cli import main

raise SystemExit(main())
