# The slow form of test_tokenizer_peer: 3000 generated strings per vocabulary and every
# tokenizer.ggml.pre name the engine knows (see test_tokenizer_peer.sh).
S=${MP_SRC:-..}
MP_TOK_DIFF_N=${MP_TOK_DIFF_N:-3000} MP_TOK_ALL_PRE=1 exec bash "$S/tests/test_tokenizer_peer.sh"
