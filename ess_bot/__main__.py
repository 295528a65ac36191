from ess_bot.cli import main

raise SystemExit(main())
