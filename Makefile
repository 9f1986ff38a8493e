# Shortcuts for the scripts the README names.
.PHONY: dev test install

install:
	bash scripts/install.sh

dev:
	bash scripts/dev.sh

test:
	bash scripts/test.sh
