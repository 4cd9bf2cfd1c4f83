"""The methods' losses, one module each, as plain PyTorch modules (no trainer, no config)."""
