DROP SEQUENCE orders.order_number_blocks;
DROP TABLE orders.order_addresses;
DROP TABLE orders.order_items;
DROP TABLE orders.orders;
DROP TABLE orders.events;
