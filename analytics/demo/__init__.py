"""The demo organisation: generated repositories loaded through the same commands a user runs."""
