"""Column names shared across capabilities.

Transforms take column names as parameters whose defaults come from here, so a table with
other names can be passed without renaming. Lineage columns start with an underscore.
"""

# --- lineage (every bronze row) -------------------------------------------------------
SOURCE = "_source"  # source name from conf (e.g. "online_retail")
SOURCE_FILE = "_source_file"  # full URI of the file the row came from
LINE = "_line"  # 1-based physical line in the source file (row index + 1 for parquet)
BATCH_ID = "_batch_id"  # first 16 hex chars of the file's sha256: same file -> same id
INGESTED_AT = "_ingested_at"

# --- rejects / audit ------------------------------------------------------------------
RAW = "raw"  # the record as read
REASONS = "reasons"  # array<string> of every rule the row broke
REASON = "reason"  # the first (primary) reason, for grouping

# --- orders (canonical names of the Online Retail order lines) ------------------------
INVOICE_NO = "invoice_no"
STOCK_CODE = "stock_code"
DESCRIPTION = "description"
QUANTITY = "quantity"
INVOICE_DATE = "invoice_date"
UNIT_PRICE = "unit_price"
CUSTOMER_ID = "customer_id"
COUNTRY = "country"

# --- derived names used downstream ----------------------------------------------------
WAREHOUSE = "warehouse"
ITEM_ID = "item_id"
USER_ID = "user_id"
DATE = "date"
AMOUNT = "amount"

# --- campaign (Hillstrom) --------------------------------------------------------------
TREATMENT = "segment"  # Hillstrom calls the arm "segment"
VISIT = "visit"
CONVERSION = "conversion"
SPEND = "spend"

# --- sessions (Online Shoppers) --------------------------------------------------------
REVENUE = "revenue"

# --- silver / gold (clean, features, segments) -----------------------------------------
INVOICE_TS = "invoice_ts"
IS_OUTLIER = "is_outlier"
ORIGINAL_INVOICE_NO = "original_invoice_no"
CUSTOMER_KEY = "customer_key"  # pseudonymised customer id in gold
SESSION_ID = "session_id"
LABEL = "label"
AS_OF = "as_of"
SEGMENT_ID = "segment"  # gold.segments cluster id (not the Hillstrom arm, see TREATMENT)

# --- silver campaign log / effect (issue 6) -----------------------------------------------
CAMPAIGN_TREATMENT = "treatment"  # silver.campaign_log arm column (bronze calls it "segment")
