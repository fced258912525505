-- wrk script: GET one order (ORDER_ID) repeatedly.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.path = "/api/v1/orders/" .. os.getenv("ORDER_ID")

done = function(summary, latency, requests)
  io.write(string.format("requests %d, non-2xx %d, %.0f req/s\n", summary.requests, summary.errors.status, summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
