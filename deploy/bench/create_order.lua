-- wrk script: POST /api/v1/orders with a fixed valid body.
-- TOKEN must be set in the environment (just bench does it).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = [[{"currency":"USD","items":[{"product_id":"prod_123","quantity":2,"unit_price":"29.99","name":"T-shirt","sku":"TS-1"},{"product_id":"prod_456","quantity":1,"unit_price":"12.50"}],"shipping_address":{"first_name":"Ada","last_name":"Lovelace","line1":"12 St James's Square","city":"London","postal_code":"SW1Y 4JH","country":"GB"},"shipping_method":"standard"}]]

done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("requests %d, non-2xx/errors %d, %.0f req/s\n", summary.requests, errors, summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
