DROP TABLE orders.stock_releases;
