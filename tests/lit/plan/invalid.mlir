// One verifier error per plan op and type.
// RUN: v4-opt --split-input-file --verify-diagnostics %s

// expected-error @+1 {{has kind "ring"; use one of "window", "compress_state", "entries"}}
plan.cache_slot @"layers.0.window" {kind = "ring", layer = 0 : i64, rows = 4 : i64, width = 8 : i64,
                                    rate = 0 : i64, element_type = f32}

// -----

// expected-error @+1 {{of kind entries has rate 0; set rate to the compression rate m > 0}}
plan.cache_slot @"layers.0.entries" {kind = "entries", layer = 0 : i64, rows = 0 : i64, width = 8 : i64,
                                     rate = 0 : i64, element_type = f32}

// -----

// expected-error @+1 {{of kind window has rows 0; a fixed-size cache needs rows > 0}}
plan.cache_slot @"layers.0.window" {kind = "window", layer = 0 : i64, rows = 0 : i64, width = 8 : i64,
                                    rate = 0 : i64, element_type = f32}

// -----

// expected-error @+1 {{has element_type 'i32'; use f32, bf16, f16 or f8E4M3FN}}
plan.cache_slot @"layers.0.window" {kind = "window", layer = 0 : i64, rows = 4 : i64, width = 8 : i64,
                                    rate = 0 : i64, element_type = i32}

// -----

// expected-error @+1 {{has kind "train"; use "prefill" or "decode"}}
plan.bucket @train_4 attributes {kind = "train", tokens = 4 : i64, batch = 1 : i64} {
}

// -----

// expected-error @+1 {{is a decode bucket with tokens = 4 and batch = 2; decode runs one token per session, set tokens = batch}}
plan.bucket @decode_2 attributes {kind = "decode", tokens = 4 : i64, batch = 2 : i64} {
}

// -----

// expected-error @+1 {{is a prefill bucket with batch 2; a prefill chunk belongs to one session, set batch = 1}}
plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 2 : i64} {
}

// -----

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  // expected-error @+1 {{has name "tokens"; a bucket's inputs are "ids" and "positions"}}
  %ids = plan.input "tokens" : !plan.buffer<4xi32>
}

// -----

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  // expected-error @+1 {{has 8 elements but the bucket has 4 tokens; make them equal}}
  %ids = plan.input "ids" : !plan.buffer<8xi32>
}

// -----

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  // expected-error @+1 {{has name "probs"; the only output is "logits"}}
  %out = plan.output "probs" : !plan.buffer<4x16xf32>
}

// -----

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  // expected-error @+1 {{has 2 rows but the bucket has 4 tokens; make them equal}}
  %out = plan.output "logits" : !plan.buffer<2x16xf32>
}

// -----

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  // expected-error @+1 {{refers to @model.norm.weight, which is not declared; add a module-level v4.global for it}}
  %w = plan.weight @"model.norm.weight" : !plan.buffer<8xf32>
}

// -----

v4.global @"model.norm.weight" : tensor<8xf32>
plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  // expected-error @+1 {{has type '!plan.buffer<16xf32>' but @model.norm.weight is declared as 'tensor<8xf32>'; use the declared shape and element type}}
  %w = plan.weight @"model.norm.weight" : !plan.buffer<16xf32>
}

// -----

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  // expected-error @+1 {{refers to @layers.0.window, which is not a plan.cache_slot; declare the slot at module level}}
  %c = plan.cache @"layers.0.window" : !plan.cache
}

// -----

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  // expected-error @+1 {{has offset 32; offsets must be non-negative multiples of 64 (rerun v4-plan-memory)}}
  %a = plan.alloc offset 32 : !plan.buffer<4x8xf32>
}

// -----

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64, arena_bytes = 128 : i64} {
  // expected-error @+1 {{ends at byte 192, past the bucket's arena_bytes = 128; rerun v4-plan-memory}}
  %a = plan.alloc offset 64 : !plan.buffer<4x8xf32>
}

// -----

// expected-error @+1 {{'plan.alloc' op expects parent op 'plan.bucket'}}
%a = plan.alloc : !plan.buffer<4x8xf32>

// -----

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  %a = plan.alloc : !plan.buffer<4x8xf32>
  // expected-error @+1 {{has an empty kernel name; name the kernel, e.g. "v4.linear"}}
  plan.launch ""() -> (%a : !plan.buffer<4x8xf32>) {params = {}}
}

// -----

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  %a = plan.alloc : !plan.buffer<4x8xf32>
  // expected-error @+1 {{writes nothing; a launch needs at least one out buffer}}
  "plan.launch"(%a) {kernel = "v4.add", params = {}, operandSegmentSizes = array<i32: 1, 0>} : (!plan.buffer<4x8xf32>) -> ()
}

// -----

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  %ids = plan.input "ids" : !plan.buffer<4xi32>
  // expected-error @+1 {{writes a value that is not a plan.alloc, plan.output or plan.cache; inputs and weights are read-only}}
  plan.launch "v4.fill"() -> (%ids : !plan.buffer<4xi32>) {params = {}}
}

// -----

plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  %a = plan.alloc : !plan.buffer<4x8xf32>
  %b = plan.alloc : !plan.buffer<4x8xf32>
  // expected-error @+1 {{has in_place index 1; list distinct positions of `ins` in increasing order, each below 1}}
  plan.launch "v4.rms_norm"(%a : !plan.buffer<4x8xf32>) -> (%b : !plan.buffer<4x8xf32>) {in_place = array<i64: 1>, params = {}}
}

// -----

// expected-error @+1 {{buffer dimensions must be static and positive, got 0}}
func.func private @zero_dim(!plan.buffer<0x8xf32>)

// -----

func.func @not_a_bucket() {
  // expected-error @+1 {{'plan.return' op expects parent op 'plan.bucket'}}
  plan.return
}

// -----

func.func @nested() {
  // expected-error @+1 {{'plan.bucket' op expects parent op 'builtin.module'}}
  plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  }
  return
}
