// plan.cache_slot storage formats: an f8E4M3FN slot names its bf16 rope
// channels with rope_width; other formats have none.
// RUN: v4-opt --split-input-file --verify-diagnostics %s | FileCheck %s

// CHECK-LABEL: plan.cache_slot @layers.0.window
// CHECK-SAME: {element_type = f8E4M3FN, kind = "window", layer = 0 : i64, rate = 0 : i64, rope_width = 64 : i64, rows = 128 : i64, width = 512 : i64}
plan.cache_slot @"layers.0.window" {kind = "window", layer = 0 : i64, rows = 128 : i64, width = 512 : i64,
                                    rate = 0 : i64, element_type = f8E4M3FN, rope_width = 64 : i64}
// CHECK-LABEL: plan.cache_slot @layers.0.indexer.entries
// CHECK-SAME: {element_type = f8E4M3FN, kind = "entries", layer = 0 : i64, rate = 4 : i64, rope_width = 0 : i64, rows = 0 : i64, width = 128 : i64}
plan.cache_slot @"layers.0.indexer.entries" {kind = "entries", layer = 0 : i64, rows = 0 : i64, width = 128 : i64,
                                             rate = 4 : i64, element_type = f8E4M3FN, rope_width = 0 : i64}

// -----

// expected-error @+1 {{stores f8E4M3FN rows but has no rope_width; set rope_width to the row's trailing bf16 (rope) channels, 0 when there are none}}
plan.cache_slot @"layers.0.window" {kind = "window", layer = 0 : i64, rows = 4 : i64, width = 8 : i64,
                                    rate = 0 : i64, element_type = f8E4M3FN}

// -----

// expected-error @+1 {{has rope_width but stores 'bf16' rows; only an f8E4M3FN slot splits its rows, remove rope_width}}
plan.cache_slot @"layers.0.window" {kind = "window", layer = 0 : i64, rows = 4 : i64, width = 8 : i64,
                                    rate = 0 : i64, element_type = bf16, rope_width = 4 : i64}

// -----

// expected-error @+1 {{has rope_width 8; it must be in [0, width = 8)}}
plan.cache_slot @"layers.0.window" {kind = "window", layer = 0 : i64, rows = 4 : i64, width = 8 : i64,
                                    rate = 0 : i64, element_type = f8E4M3FN, rope_width = 8 : i64}
