-- wrk script: POST /api/v1/orders with a payment method, so each request
-- starts the whole pay flow (orders → payments → RabbitMQ → orders).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = [[{"currency":"USD","items":[{"product_id":"prod_123","quantity":2,"unit_price":"29.99","name":"T-shirt","sku":"TS-1"},{"product_id":"prod_456","quantity":1,"unit_price":"12.50"}],"shipping_address":{"first_name":"Ada","last_name":"Lovelace","line1":"12 St James's Square","city":"London","postal_code":"SW1Y 4JH","country":"GB"},"payment":{"method":"card","token":"tok_visa"}}]]

done = function(summary, latency, requests)
  io.write(string.format("requests %d, non-2xx/errors %d, %.0f req/s\n", summary.requests, summary.errors.status + summary.errors.connect + summary.errors.timeout, summary.requests / (summary.duration / 1e6)))
  io.write(string.format("POST latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
