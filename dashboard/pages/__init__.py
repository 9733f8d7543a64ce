"""Dashboard pages, one module per view; each layout is a function of the URL's query string."""
