# Parity with llama.cpp for Q4_0 and the K-quants: test_parity_llamacpp.sh with
# the other half of the weight types (split so each script stays under a minute).
MP_PARITY_TYPES="q4_0 q4_K q5_K q6_K" exec bash "$(dirname "${BASH_SOURCE[0]}")/test_parity_llamacpp.sh"
