"""cmh-dashboard pipelines: synthetic extracts in, published indicator warehouse out."""
