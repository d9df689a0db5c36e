"""attribkit."""
