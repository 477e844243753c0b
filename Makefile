# Convenience targets; the README's commands are the reference.
.PHONY: test eval bench

test:
	./tools/test.sh

eval:
	cargo build -q --release -p pickleguard-cli
	PICKLEGUARD_BIN=target/release/pickleguard $${PICKLEGUARD_VENV:-$$HOME/.cache/pickleguard/venv}/bin/python tools/eval.py

bench:
	$${PICKLEGUARD_VENV:-$$HOME/.cache/pickleguard/venv}/bin/python benches/make_data.py
	cargo bench -p pickleguard --bench engine
