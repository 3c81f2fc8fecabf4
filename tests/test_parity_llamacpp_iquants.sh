# Parity with llama.cpp for the weight types added for the DeepSeek family
# (Q2_K, Q3_K, IQ4_NL, IQ4_XS) on mp-gen's random models: test_parity_llamacpp.sh
# with these types (files from llama.cpp's own quantiser: test_parity_llamacpp_peerquant.sh).
MP_PARITY_TYPES="q2_K q3_K iq4_nl iq4_xs" exec bash "$(dirname "${BASH_SOURCE[0]}")/test_parity_llamacpp.sh"
