"""`import --kind products` (issue 14, 2): Shopify's and WooCommerce's products CSV exports,
the canonical layout and mappings, into the catalogue the suggested products come from.
Real CLI, real SQLite; the exports are in tests/fixtures/products (SOURCES.md)."""

from __future__ import annotations


def _products(mailflow) -> dict[str, dict]:
    return {row["key"]: row for row in mailflow.query("SELECT * FROM products")}


def test_shopify_products_export_gives_one_product_per_variant(mailflow):
    path = mailflow.fixture("products/shopify_products_export.csv")
    result = mailflow("import", path, "--now", "2026-03-01T10:00", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["files"][0]["format"] == "shopify"
    assert report["files"][0]["kind"] == "products"
    assert report["products"] == {"inserted": 9, "updated": 0}
    products = _products(mailflow)
    # no SKU: known by the name its order lines show (the title, or "title - variant")
    hydrogen = products["The Collection Snowboard: Hydrogen"]
    assert hydrogen["url"] == "/products/the-collection-snowboard-hydrogen"
    assert hydrogen["image"] == "https://cdn.shopify.com/s/files/1/0000/hydrogen.png?v=1"
    assert (hydrogen["price"], hydrogen["available"]) == ("600.00", 1)
    special = products["Selling Plans Ski Wax - Special Selling Plans Ski Wax"]
    assert special["price"] == "49.95"  # a decimal comma
    assert special["image"] == "https://cdn.shopify.com/s/files/1/0000/wax-special.png?v=1"
    plain = products["Selling Plans Ski Wax - Selling Plans Ski Wax"]
    assert plain["image"] == "https://cdn.shopify.com/s/files/1/0000/wax.png?v=1"  # the product's
    # a variant without stock that Shopify refuses to oversell, a draft, an archived product
    assert products["Selling Plans Ski Wax - Sample Selling Plans Ski Wax"]["available"] == 0
    assert products["sku-draft-1"]["available"] == 0
    assert products["sku-archived-1"]["available"] == 0
    assert products["COMPLETE-DAWN"]["name"] == "The Complete Snowboard - Dawn"
    assert products["COMPLETE-DAWN"]["image"] == products["COMPLETE-ICE"]["image"]
    assert products["sku-untracked-1"]["available"] == 1  # stock not tracked by Shopify


def test_the_same_file_twice_imports_nothing_and_a_newer_one_updates(mailflow):
    path = mailflow.fixture("products/shopify_products_export.csv")
    assert mailflow("import", path, "--now", "2026-03-01T10:00").exit_code == 0
    before = mailflow.dump()
    again = mailflow("import", path, "--now", "2026-03-02T10:00")
    assert again.exit_code == 0
    assert "already imported" in again.stdout
    assert mailflow.dump() == before
    newer = path.read_text(encoding="utf-8").replace(",949.95,", ",899.00,")
    changed = mailflow("import", mailflow.write("products_export_2.csv", newer), "--json",
                       "--now", "2026-03-03T10:00")
    assert changed.json()["products"] == {"inserted": 0, "updated": 1}
    assert _products(mailflow)["sku-untracked-1"]["price"] == "899.00"


def test_shopify_layout_of_2024_is_read_by_its_column_names(mailflow):
    path = mailflow.write("products_export_1.csv", (
        "Title,URL handle,Description,Vendor,Status,SKU,Option1 name,Option1 value,Price,"
        "Product image URL,Image position,Variant image URL,Published on online store\n"
        "Thé vert,the-vert,,Maison,Active,THE-V-100,Poids,100 g,8.50,"
        "https://cdn.shopify.com/the.jpg,1,,TRUE\n"
        ",the-vert,,,,THE-V-250,,250 g,17.00,,,https://cdn.shopify.com/the-250.jpg,\n"))
    assert mailflow("import", path, "--now", "2026-03-01T10:00").exit_code == 0
    products = _products(mailflow)
    assert products["THE-V-250"]["name"] == "Thé vert - 250 g"
    assert products["THE-V-250"]["image"] == "https://cdn.shopify.com/the-250.jpg"
    assert products["THE-V-100"]["url"] == "/products/the-vert"
    assert products["THE-V-100"]["available"] == 1


def test_a_rejected_row_names_its_line_and_the_rest_imports(mailflow):
    text = (mailflow.fixture("products/shopify_products_export.csv")
            .read_text(encoding="utf-8").replace(",699.95,", ",six cents,", 1))
    path = mailflow.write("products_export.csv", text)
    result = mailflow("import", path, "--now", "2026-03-01T10:00")
    assert result.exit_code == 1
    assert f"{path}:7: Variant Price: unreadable amount 'six cents'" in result.stderr
    assert "Traceback" not in result.stderr
    products = _products(mailflow)
    assert "COMPLETE-ICE" not in products
    assert "COMPLETE-DAWN" in products


def test_woocommerce_products_export(mailflow):
    path = mailflow.fixture("products/wc-product-export.csv")
    result = mailflow("import", path, "--now", "2026-03-01T10:00", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["files"][0]["format"] == "woocommerce"
    products = _products(mailflow)
    red = products["woo-hoodie-red"]
    assert red["name"] == "Hoodie - Rouge"
    assert red["price"] == "39.90"  # on sale
    assert red["url"] == "/?post_type=product&p=12"  # shown on its parent's page
    assert red["image"] == "https://woo.example/wp-content/uploads/hoodie-2.jpg"  # the parent's
    assert products["woo-hoodie-blue"]["image"] == \
        "https://woo.example/wp-content/uploads/hoodie-blue.jpg"
    assert products["woo-beanie"]["price"] == "18"
    assert products["woo-beanie"]["url"] == "/?post_type=product&p=13"
    assert products["Casquette"]["price"] == "16.50"  # no SKU: known by its name
    assert {k for k, p in products.items() if not p["available"]} == {
        "woo-belt", "woo-cap-draft", "woo-sunglasses"}  # out of stock, draft, private


def test_canonical_and_mapped_products(mailflow):
    canonical = mailflow.write("catalogue.csv", (
        "sku;name;url;image;price;currency;available\n"
        "MUG-B;Mug bleu;https://boutique.example/mug;https://boutique.example/mug.jpg;12,50;eur;oui\n"
        "MUG-R;Mug rouge;;;12,50;;non\n"
        ";Sans SKU;;;;;\n"))
    result = mailflow("import", canonical, "--now", "2026-03-01T10:00")
    assert result.exit_code == 0, result.stderr
    products = _products(mailflow)
    assert (products["MUG-B"]["price"], products["MUG-B"]["currency"]) == ("12.50", "EUR")
    assert products["MUG-R"]["available"] == 0
    assert products["Sans SKU"]["available"] == 1
    mapping = mailflow.write("presta.yaml", "kind: products\ncolumns:\n  sku: Référence\n"
                             "  name: Nom\n  price: Prix TTC\n  url: Lien\n"
                             "defaults:\n  currency: EUR\n")
    export = mailflow.write("presta.csv", "Référence;Nom;Prix TTC;Lien\n"
                            "TH-1;Théière;34,00;https://boutique.example/theiere\n"
                            "TH-2;;10;\n")
    mapped = mailflow("import", export, "--mapping", mapping, "--now", "2026-03-01T10:00")
    assert mapped.exit_code == 1
    assert f"{export}:3: name is empty" in mapped.stderr
    assert _products(mailflow)["TH-1"]["currency"] == "EUR"


def test_a_file_that_is_not_a_products_export_changes_nothing(mailflow):
    orders = mailflow.write("orders.csv", "order_id,email,created_at,line_sku,line_name\n"
                            "1001,a@example.com,2026-03-01 10:00,MUG,Mug\n")
    assert mailflow("import", mailflow.fixture("products/shopify_products_export.csv"),
                    "--now", "2026-03-01T10:00").exit_code == 0
    before = mailflow.dump()
    result = mailflow("import", orders, "--kind", "products")
    assert result.exit_code == 2
    assert "not a products export" in result.stderr
    assert "Traceback" not in result.stderr
    assert mailflow.dump() == before
    inventory = mailflow.write("inventory_export_1.csv", (  # Shopify's other export by Handle
        "Handle,Title,Option1 Name,Option1 Value,SKU,Location,Available,On hand\n"
        "the-complete-snowboard,The Complete Snowboard,Color,Ice,COMPLETE-ICE,Shop,10,10\n"))
    assert mailflow("import", inventory, "--kind", "products").exit_code == 2
    assert mailflow.dump() == before
    products = mailflow.fixture("products/wc-product-export.csv")
    wrong = mailflow("import", products, "--kind", "orders")
    assert wrong.exit_code == 2
    assert "does not fit" in wrong.stderr
    assert mailflow.dump() == before


def test_woocommerce_export_of_a_french_site(mailflow):
    path = mailflow.write("wc-product-export-fr.csv", (
        "\ufeffID;Type;UGS;Nom;Publié;En stock ?;Tarif promo;Tarif régulier;Images;Parent\n"
        "40;simple;THE-NOIR;Thé noir;1;1;;9,90;https://woo.example/the-noir.jpg;\n"
        "41;simple;THE-BLANC;Thé blanc;1;0;;19,90;;\n"))
    result = mailflow("import", path, "--now", "2026-03-01T10:00", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["files"][0]["format"] == "woocommerce"
    products = _products(mailflow)
    assert (products["THE-NOIR"]["price"], products["THE-NOIR"]["available"]) == ("9.90", 1)
    assert products["THE-BLANC"]["available"] == 0  # out of stock
