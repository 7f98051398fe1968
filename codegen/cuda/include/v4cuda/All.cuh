// Everything a generated translation unit needs: every kernel family header
// and the dummy-weight fill entry. The generated .cu starts with
// `#include <v4cuda/All.cuh>` and then defines its entries.
// CudaCodegenTest checks that every v4cuda/*.cuh is listed here.
#pragma once

#include <v4cuda/Common.cuh>
#include <v4cuda/DummyFill.cuh>

// Dense, mHC, router, quantized linears.
#include <v4cuda/Dense.cuh>
#include <v4cuda/DenseLinear.cuh>
#include <v4cuda/DenseMath.cuh>
#include <v4cuda/DenseMma.cuh>
#include <v4cuda/DenseWgmma.cuh>
#include <v4cuda/DenseWgmmaFp8.cuh>
#include <v4cuda/HyperConnection.cuh>
#include <v4cuda/Quant.cuh>
#include <v4cuda/Router.cuh>

// Hopper wgmma (sm_90a) and cp.async (sm_80+) primitives.
#include <v4cuda/CpAsync.cuh>
#include <v4cuda/Wgmma.cuh>

// Caches, compressor, indexer, attention, MoE.
#include <v4cuda/Attention.cuh>
#include <v4cuda/Cache.cuh>
#include <v4cuda/Compressor.cuh>
#include <v4cuda/Indexer.cuh>
#include <v4cuda/Moe.cuh>

// Single-token decode over long contexts: split indexer and attention.
#include <v4cuda/AttentionDecode.cuh>
#include <v4cuda/IndexerDecode.cuh>
#include <v4cuda/MoeMma.cuh>
#include <v4cuda/MoeWgmma.cuh>
