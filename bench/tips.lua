-- bizprobe bench, workload B: POST /api/tips with pm_card_visa (create + confirm a PaymentIntent).
wrk.method = "POST"
wrk.path = "/api/tips"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"amount":500,"currency":"usd","payment_method":"pm_card_visa","fan_id":"fan_bench","creator_id":"cr_bench"}'
