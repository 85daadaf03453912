"""The GraphQL Admin API queries the Shopify source sends (field names of the 2025-10 reference,
tests/fixtures/api/shopify/SOURCES.md), and how many nodes each asks for per page.

Page sizes keep a page's requested cost under Shopify's 1000-point single-query limit (an object
costs 1, a connection 2 + `first` × its node): an order node with its money bags, addresses,
customer, 20 lines and 10 parcels is ~100 points, so 8 orders a page; a checkout ~70, a customer 2.
Orders or checkouts with more lines than the first 20 get the rest from the LINES queries.
"""

from __future__ import annotations

ORDER_PAGE = 8
CHECKOUT_PAGE = 10
CUSTOMER_PAGE = 100
FIRST_LINES = 20
MORE_LINES = 100

_MONEY = "shopMoney { amount }"
_LINE_PAGE = "pageInfo { hasNextPage endCursor }"
_ORDER_LINE = f"sku name quantity originalUnitPriceSet {{ {_MONEY} }}"
_CHECKOUT_LINE = f"sku title quantity originalUnitPriceSet {{ {_MONEY} }}"

ORDERS = f"""
query MailflowOrders($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {{
    nodes {{
      id legacyResourceId name email createdAt updatedAt processedAt cancelledAt
      displayFinancialStatus displayFulfillmentStatus paymentGatewayNames currencyCode customerLocale
      subtotalPriceSet {{ {_MONEY} }}
      totalShippingPriceSet {{ {_MONEY} }}
      totalTaxSet {{ {_MONEY} }}
      totalDiscountsSet {{ {_MONEY} }}
      totalPriceSet {{ {_MONEY} }}
      shippingLine {{ title }}
      shippingAddress {{ firstName lastName name company address1 address2 zip city province country }}
      billingAddress {{ firstName lastName }}
      customer {{ firstName lastName email emailMarketingConsent {{ marketingState }} }}
      lineItems(first: {FIRST_LINES}) {{ nodes {{ {_ORDER_LINE} }} {_LINE_PAGE} }}
      fulfillments(first: 10) {{
        createdAt updatedAt status displayStatus deliveredAt trackingInfo(first: 5) {{ number url company }}
      }}
      refunds(first: 20) {{ createdAt totalRefundedSet {{ {_MONEY} }} }}
    }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

# No UPDATED_AT sort key exists for abandoned checkouts (AbandonedCheckoutSortKeys): by ID.
CHECKOUTS = f"""
query MailflowCheckouts($first: Int!, $after: String, $query: String) {{
  abandonedCheckouts(first: $first, after: $after, sortKey: ID, query: $query) {{
    nodes {{
      id name abandonedCheckoutUrl createdAt updatedAt completedAt
      totalPriceSet {{ shopMoney {{ amount currencyCode }} }}
      billingAddress {{ firstName lastName }}
      customer {{ firstName lastName email locale emailMarketingConsent {{ marketingState }} }}
      lineItems(first: {FIRST_LINES}) {{ nodes {{ {_CHECKOUT_LINE} }} {_LINE_PAGE} }}
    }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

CUSTOMERS = """
query MailflowCustomers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {
    nodes {
      id email firstName lastName locale createdAt updatedAt
      emailMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""

ORDER_LINES = f"""
query MailflowOrderLines($id: ID!, $after: String) {{
  node(id: $id) {{
    ... on Order {{
      lineItems(first: {MORE_LINES}, after: $after) {{ nodes {{ {_ORDER_LINE} }} {_LINE_PAGE} }}
    }}
  }}
}}"""

CHECKOUT_LINES = f"""
query MailflowCheckoutLines($id: ID!, $after: String) {{
  node(id: $id) {{
    ... on AbandonedCheckout {{
      lineItems(first: {MORE_LINES}, after: $after) {{ nodes {{ {_CHECKOUT_LINE} }} {_LINE_PAGE} }}
    }}
  }}
}}"""
