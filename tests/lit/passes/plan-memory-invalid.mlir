// RUN: v4-opt --split-input-file --allow-unregistered-dialect --v4-plan-memory --verify-diagnostics %s

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  // expected-error @+1 {{is read by launch "v4.add" before any launch writes it; write the buffer before reading it}}
  %a = plan.alloc : !plan.buffer<4x8xf32>
  %b = plan.alloc : !plan.buffer<4x8xf32>
  plan.launch "v4.add"(%a, %a : !plan.buffer<4x8xf32>, !plan.buffer<4x8xf32>) -> (%b : !plan.buffer<4x8xf32>) {params = {}}
}

// -----

// Only launches may touch arena bytes: any other user would escape the plan's lifetimes.
plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  // expected-error @+1 {{is used by 'test.use'; only plan.launch may use an arena buffer}}
  %a = plan.alloc : !plan.buffer<4x8xf32>
  %n = "test.use"(%a) : (!plan.buffer<4x8xf32>) -> i32
}
