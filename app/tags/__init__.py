"""Asset tags: what a tag's QR code holds, issuing and scanning tags, and the label templates they print on."""
