"""Live sources: the shops' own APIs, pulled by `mailflow pull` and `mailflow run`.

Each platform (shopify.py, woocommerce.py, prestashop.py) turns what its API answers into
the same records the file importers make; pull.py writes them through the store, page by
page, and moves the source's watermark only once a pull went through. client.py is the
one module that fetches over HTTP.
"""
