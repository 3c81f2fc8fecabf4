# Parity with llama.cpp for Q5_0 and Q5_1 (llama-quantize's fallback for rows that no
# 256-block divides: real DeepSeek/Kimi K-quant files' 128-wide attn_k_b, V2-Lite's
# 1408-wide expert down) on mp-gen's random models: test_parity_llamacpp.sh with
# these types (files from llama.cpp's own quantiser: the ds2-real rows of
# test_parity_llamacpp_peerquant.sh).
MP_PARITY_TYPES="q5_0 q5_1" exec bash "$(dirname "${BASH_SOURCE[0]}")/test_parity_llamacpp.sh"
