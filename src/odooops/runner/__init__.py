"""The runner: claims runs from the queue and executes them."""
