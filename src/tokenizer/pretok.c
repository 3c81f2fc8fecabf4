#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretok.h"

#include "tokenizer/tok_unicode.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* ---- Regex lists (the same strings llama.cpp uses per pre-tokenizer) ---- */

#define RX_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RX_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RX_LLAMA3 RX_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_QWEN2 RX_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static const char *const k_rx_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    RX_GPT2,
    "\\p{N}+",
    "[0-9][0-9][0-9]",
    NULL,
};
static const char *const k_rx_gpt2[] = {RX_GPT2, NULL};
static const char *const k_rx_llama3[] = {RX_LLAMA3, NULL};
static const char *const k_rx_qwen2[] = {RX_QWEN2, NULL};
static const char *const k_rx_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
    NULL,
};
static const char *const k_rx_deepseek_coder[] = {
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}",
    NULL,
};
/* DeepSeek-V3: digits in threes, then CJK ideographs and kana runs, then a
 * word rule where one ASCII punctuation mark may lead an ASCII word and
 * letters take their combining marks. */
static const char *const k_rx_deepseek3[] = {
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
/* Kimi-K2: llama.cpp's trigger string for its hand-written matcher of
 * tiktoken's K2 pattern (split_kimi_k2 below) */
#define RX_KIMI_K2 "\\p{Han}+"
static const char *const k_rx_kimi_k2[] = {RX_KIMI_K2, NULL};

/* Qwen3.5: Qwen2 with combining marks inside letter runs (hand-written
 * matcher, split_llama3 with marks). */
#define RX_QWEN35 RX_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
static const char *const k_rx_qwen35[] = {RX_QWEN35, NULL};
/* Trigger strings of llama.cpp's other hand-written splitters: AFMoE's digit
 * groups (leading 1-2 digits, then threes; also used for tiny_aya's
 * "\d{1,3}(?=(?:\d{3})*\b)") and runs of newlines vs the rest. */
#define RX_AFMOE_DIGITS "\\p{AFMoE_digits}"
#define RX_TINY_AYA_DIGITS "\\d{1,3}(?=(?:\\d{3})*\\b)"
#define RX_NEWLINES "[^\\n]+|[\\n]+"
#define RX_O200K_CASE "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" RX_CONTRACTIONS "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" RX_CONTRACTIONS "?"
#define RX_BLOOM " ?[^(\\s|.,!?…。，、।۔،)]+"

static const char *const k_rx_falcon[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    RX_GPT2,
    "[0-9][0-9][0-9]",
    NULL,
};
static const char *const k_rx_starcoder[] = {"\\p{N}", RX_GPT2, NULL};
static const char *const k_rx_bloom[] = {RX_BLOOM, NULL};
static const char *const k_rx_viking[] = {RX_BLOOM, "\\p{N}", NULL};
static const char *const k_rx_tekken[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const k_rx_chameleon[] = {
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]",
    RX_GPT2,
    NULL,
};
static const char *const k_rx_gpt4o[] = {
    RX_O200K_CASE "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const k_rx_granite_emb_multi[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+" RX_CONTRACTIONS
    "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*" RX_CONTRACTIONS
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const k_rx_tiny_aya[] = {
    RX_TINY_AYA_DIGITS,
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" RX_CONTRACTIONS
    "?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" RX_CONTRACTIONS
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const k_rx_superbpe[] = {"\\p{N}+", "(?=(\\d{3})+(?!\\d))", NULL};
static const char *const k_rx_bailingmoe[] = {
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const k_rx_seed_coder[] = {
    RX_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const k_rx_ufakzeka[] = {
    "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const k_rx_afmoe[] = {
    RX_AFMOE_DIGITS,
    "[一-鿿㐀-䶿豈-﫿぀-ゟ゠-ヿ･-ﾟ⼀-⿟เ-๿຀-໿ក-៿က-႟ꩠ-ꩿꧠ-꧿가-힯ᄀ-ᇿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const k_rx_laguna[] = {RX_NEWLINES, RX_QWEN2, NULL};
static const char *const k_rx_exaone_moe[] = {
    RX_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const k_rx_gemma4[] = {RX_NEWLINES, NULL};
static const char *const k_rx_minicpm5[] = {
    "\\p{N}{1,3}",
    RX_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const k_rx_whitespace[] = {"\\S+", NULL};
static const char *const k_rx_jais2[] = {
    RX_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}",
    NULL,
};
static const char *const k_rx_spark2_5[] = {
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+",
    "\\p{N}",
    NULL,
};
static const char *const k_rx_youtu[] = {
    "[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" RX_CONTRACTIONS
    "?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" RX_CONTRACTIONS
    "?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};

/* Every tokenizer.ggml.pre name llama-vocab.cpp accepts, with its family and
 * the flags it sets by name (I: ignore_merges, B: add_bos, K: keep spaces =
 * clean_spaces off, E: escape whitespaces, S: add_sep, N: no default BOS). */
enum { P_I = 1, P_B = 2, P_K = 4, P_E = 8, P_S = 16, P_N = 32 };
static const struct {
    const char *name;
    mp_pretok_kind kind;
    unsigned flags;
} k_pre_names[] = {
    {"default", MP_PRETOK_DEFAULT, 0},
    {"minicpm5", MP_PRETOK_MINICPM5, P_I},
    {"llama3", MP_PRETOK_LLAMA3, P_I | P_B},      {"llama-v3", MP_PRETOK_LLAMA3, P_I | P_B},
    {"llama-bpe", MP_PRETOK_LLAMA3, P_I | P_B},   {"falcon3", MP_PRETOK_LLAMA3, P_I | P_B},
    {"falcon-h1", MP_PRETOK_LLAMA3, P_I | P_B},   {"pixtral", MP_PRETOK_LLAMA3, P_I | P_B},
    {"midm-2.0", MP_PRETOK_LLAMA3, P_I | P_B},    {"lfm2", MP_PRETOK_LLAMA3, P_I | P_B},
    {"jina-v5-nano", MP_PRETOK_LLAMA3, P_I | P_B},
    {"deepseek-llm", MP_PRETOK_DEEPSEEK_LLM, P_K},
    {"deepseek-coder", MP_PRETOK_DEEPSEEK_CODER, P_K},
    {"deepseek-v3", MP_PRETOK_DEEPSEEK3, P_K},
    {"spark2_5", MP_PRETOK_SPARK2_5, P_K},
    {"youtu", MP_PRETOK_YOUTU, P_K | P_I},
    {"falcon", MP_PRETOK_FALCON, 0},
    {"mpt", MP_PRETOK_GPT2, 0},
    {"starcoder", MP_PRETOK_STARCODER, 0},
    {"gpt-2", MP_PRETOK_GPT2, 0},        {"phi-2", MP_PRETOK_GPT2, 0},
    {"jina-es", MP_PRETOK_GPT2, 0},      {"jina-de", MP_PRETOK_GPT2, 0},
    {"gigachat", MP_PRETOK_GPT2, 0},     {"jina-v2-es", MP_PRETOK_GPT2, 0},
    {"jina-v2-de", MP_PRETOK_GPT2, 0},   {"a.x-4.0", MP_PRETOK_GPT2, 0},
    {"mellum", MP_PRETOK_GPT2, 0},       {"modern-bert", MP_PRETOK_GPT2, 0},
    {"jais-2", MP_PRETOK_JAIS2, 0},
    {"gemma4", MP_PRETOK_GEMMA4, P_E},   {"granite-embed-multi-311m", MP_PRETOK_GEMMA4, P_E},
    {"sarvam-moe", MP_PRETOK_SARVAM_MOE, P_E | P_K},
    {"jina-v1-en", MP_PRETOK_GPT2, P_S}, {"jina-v2-code", MP_PRETOK_GPT2, P_S},
    {"roberta-bpe", MP_PRETOK_GPT2, P_S},
    {"whitespace", MP_PRETOK_WHITESPACE, 0},
    {"refact", MP_PRETOK_STARCODER, 0},
    {"command-r", MP_PRETOK_STARCODER, P_K},
    {"qwen2", MP_PRETOK_QWEN2, P_K},     {"deepseek-r1-qwen", MP_PRETOK_QWEN2, P_K},
    {"kormo", MP_PRETOK_QWEN2, P_K},     {"f2llmv2", MP_PRETOK_QWEN2, P_K},
    {"qwen35", MP_PRETOK_QWEN35, P_K},
    {"stablelm2", MP_PRETOK_QWEN2, 0},
    {"olmo", MP_PRETOK_GPT2, 0},
    {"dbrx", MP_PRETOK_DBRX, 0},
    {"smaug-bpe", MP_PRETOK_DBRX, 0},
    {"poro-chat", MP_PRETOK_BLOOM, P_K},
    {"glm4", MP_PRETOK_CHATGLM4, P_N},   {"chatglm-bpe", MP_PRETOK_CHATGLM4, P_N},
    {"viking", MP_PRETOK_VIKING, P_K},
    {"jais", MP_PRETOK_GPT2, 0},
    {"tekken", MP_PRETOK_TEKKEN, P_K | P_I | P_B},
    {"smollm", MP_PRETOK_STARCODER, P_K},
    {"codeshell", MP_PRETOK_STARCODER, 0},
    {"bloom", MP_PRETOK_BLOOM, 0},
    {"gpt3-finnish", MP_PRETOK_BLOOM, 0},
    {"exaone", MP_PRETOK_STARCODER, 0},
    {"exaone4", MP_PRETOK_GPT2, 0},
    {"exaone-moe", MP_PRETOK_EXAONE_MOE, 0},
    {"chameleon", MP_PRETOK_CHAMELEON, P_B | P_K},
    {"minerva-7b", MP_PRETOK_STARCODER, 0},
    {"megrez", MP_PRETOK_QWEN2, 0},
    {"gpt-4o", MP_PRETOK_GPT4O, P_K},    {"llama4", MP_PRETOK_GPT4O, P_K},
    {"kanana2", MP_PRETOK_GPT4O, P_K},   {"talkie", MP_PRETOK_GPT4O, P_K},
    {"granite-embed-multi-97m", MP_PRETOK_GRANITE_EMB_MULTI, P_K | P_I},
    {"tiny_aya", MP_PRETOK_TINY_AYA, P_K}, {"cohere2moe", MP_PRETOK_TINY_AYA, P_K},
    {"superbpe", MP_PRETOK_SUPERBPE, P_K},
    {"trillion", MP_PRETOK_GPT2, P_K},
    {"granite-docling", MP_PRETOK_GPT2, P_K},
    {"bailingmoe", MP_PRETOK_BAILINGMOE, P_K}, {"bailingmoe2", MP_PRETOK_BAILINGMOE, P_K},
    {"llada-moe", MP_PRETOK_BAILINGMOE, P_K},
    {"seed-coder", MP_PRETOK_SEED_CODER, P_K},
    {"hunyuan", MP_PRETOK_QWEN2, P_K},
    {"hunyuan-dense", MP_PRETOK_DEEPSEEK3, P_K},
    {"hy_v4", MP_PRETOK_DEEPSEEK3, P_K},
    {"joyai-llm", MP_PRETOK_DEEPSEEK3, P_K},
    {"kimi-k2", MP_PRETOK_KIMI_K2, P_K},
    {"ufakzeka", MP_PRETOK_UFAKZEKA, P_K},
    {"grok-2", MP_PRETOK_QWEN2, P_K},
    {"afmoe", MP_PRETOK_AFMOE, P_K},
    {"laguna", MP_PRETOK_LAGUNA, P_K},
    {"minimax-m2", MP_PRETOK_GPT4O, P_K},
    {"solar-open", MP_PRETOK_QWEN2, P_K},
    {"mellum2", MP_PRETOK_STARCODER, 0},
};
#define N_PRE_NAMES (sizeof(k_pre_names) / sizeof(k_pre_names[0]))

const char *mp_pretok_name_at(size_t i)
{
    return i < N_PRE_NAMES ? k_pre_names[i].name : NULL;
}

bool mp_pretok_byte_encode(mp_pretok_kind kind)
{
    return kind != MP_PRETOK_GEMMA4 && kind != MP_PRETOK_SARVAM_MOE && kind != MP_PRETOK_WHITESPACE;
}

int mp_pretok_lookup(const char *pre, mp_pretok_info *info, mp_err *err)
{
    memset(info, 0, sizeof(*info));
    info->clean_spaces = true; /* llama.cpp's default for BPE vocabularies */
    if (!pre || !*pre) {
        info->kind = MP_PRETOK_DEFAULT; /* llama.cpp warns and uses 'default' */
        return MP_OK;
    }
    for (size_t i = 0; i < N_PRE_NAMES; i++) {
        if (strcmp(pre, k_pre_names[i].name) == 0) {
            const unsigned f = k_pre_names[i].flags;
            info->kind = k_pre_names[i].kind;
            info->ignore_merges = f & P_I;
            info->add_bos = f & P_B;
            info->clean_spaces = !(f & P_K);
            info->escape_whitespaces = f & P_E;
            info->add_sep = f & P_S;
            info->no_bos = f & P_N;
            return MP_OK;
        }
    }
    return mp_err_set(err, MP_E_UNSUPPORTED, "tokenizer.ggml.pre: unknown pre-tokenizer type '%s'", pre);
}

int mp_pretok_kind_from_name(const char *pre, mp_pretok_kind *kind, mp_err *err)
{
    mp_pretok_info info;
    int st = mp_pretok_lookup(pre, &info, err);
    if (st == MP_OK)
        *kind = info.kind;
    return st;
}

/* ---- Compiled regex list ---------------------------------------------- */

enum { RX_CUSTOM_NONE, RX_CUSTOM_GPT2, RX_CUSTOM_LLAMA3, RX_CUSTOM_QWEN2, RX_CUSTOM_KIMI_K2, RX_CUSTOM_QWEN35,
       RX_CUSTOM_DIGIT_GROUPS, RX_CUSTOM_NEWLINES };

#define MP_PRETOK_MAX_RX 8

typedef struct mp_pretok_rx {
    int custom;      /* RX_CUSTOM_* */
    bool collapsed;  /* runs on the one-byte-per-code-point text */
    pcre2_code *re;  /* when !custom */
} mp_pretok_rx;

struct mp_pretok {
    mp_pretok_kind kind;
    int n_rx;
    mp_pretok_rx rx[MP_PRETOK_MAX_RX];
};

/* Byte that stands for a non-ASCII code point's category in the collapsed
 * text (llama.cpp's choice, so the rewritten regexes agree with it). */
enum { COL_OTHER = 0xD0, COL_NUMBER = 0xD1, COL_LETTER = 0xD2, COL_PUNCT = 0xD3,
       COL_MARK = 0xD4, COL_SYMBOL = 0xD5 };

static const struct {
    const char *prop;
    uint8_t byte;
    const char *ascii; /* the ASCII members, as class text */
} k_collapse[] = {
    {"\\p{N}", COL_NUMBER, "0-9"},
    {"\\p{L}", COL_LETTER, "A-Za-z"},
    {"\\p{P}", COL_PUNCT, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", COL_MARK, ""},
    {"\\p{S}", COL_SYMBOL, "\\$\\+<->^`\\|~"},
    {"\\p{Lu}", COL_LETTER, "A-Za-z"},
    {"\\p{Ll}", COL_LETTER, "A-Za-z"},
    {"\\p{Lt}", COL_LETTER, "A-Za-z"},
    {"\\p{Lm}", COL_LETTER, "A-Za-z"},
    {"\\p{Lo}", COL_LETTER, "A-Za-z"},
};
#define N_COLLAPSE (sizeof(k_collapse) / sizeof(k_collapse[0]))

static bool uses_categories(const char *rx)
{
    for (size_t k = 0; k < N_COLLAPSE; k++)
        if (strstr(rx, k_collapse[k].prop))
            return true;
    return false;
}

/* Rewrites rx for the collapsed text: each \p{X} becomes its category byte
 * plus its ASCII members (wrapped in [] outside a class). Returns a malloc'd
 * string or NULL on OOM. */
static char *collapse_regex(const char *rx)
{
    size_t n = strlen(rx);
    char *out = malloc(n * 16 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    bool inside = false;
    for (size_t i = 0; i < n; i++) {
        if (rx[i] == '[' && (i == 0 || rx[i - 1] != '\\')) {
            out[o++] = '[';
            inside = true;
            continue;
        }
        if (inside && rx[i] == ']' && rx[i - 1] != '\\') {
            out[o++] = ']';
            inside = false;
            continue;
        }
        if (rx[i] == '\\' && i + 3 < n && rx[i + 1] == 'p' && rx[i + 2] == '{') {
            const char *close = strchr(rx + i + 3, '}');
            if (close && (size_t)(close - rx) <= i + 10) {
                size_t plen = (size_t)(close - rx) - i + 1;
                size_t k;
                for (k = 0; k < N_COLLAPSE; k++)
                    if (strlen(k_collapse[k].prop) == plen && memcmp(rx + i, k_collapse[k].prop, plen) == 0)
                        break;
                if (k < N_COLLAPSE) {
                    if (!inside)
                        out[o++] = '[';
                    out[o++] = (char)k_collapse[k].byte;
                    size_t al = strlen(k_collapse[k].ascii);
                    memcpy(out + o, k_collapse[k].ascii, al);
                    o += al;
                    if (!inside)
                        out[o++] = ']';
                    i += plen - 1;
                    continue;
                }
            }
        }
        out[o++] = rx[i];
    }
    out[o] = '\0';
    return out;
}

static const char *const *regex_list(mp_pretok_kind kind)
{
    switch (kind) {
    case MP_PRETOK_GPT2: return k_rx_gpt2;
    case MP_PRETOK_LLAMA3:
    case MP_PRETOK_DBRX:
    case MP_PRETOK_CHATGLM4: return k_rx_llama3;
    case MP_PRETOK_QWEN2: return k_rx_qwen2;
    case MP_PRETOK_DEEPSEEK_LLM: return k_rx_deepseek_llm;
    case MP_PRETOK_DEEPSEEK_CODER: return k_rx_deepseek_coder;
    case MP_PRETOK_DEEPSEEK3: return k_rx_deepseek3;
    case MP_PRETOK_KIMI_K2: return k_rx_kimi_k2;
    case MP_PRETOK_QWEN35: return k_rx_qwen35;
    case MP_PRETOK_FALCON: return k_rx_falcon;
    case MP_PRETOK_STARCODER: return k_rx_starcoder;
    case MP_PRETOK_BLOOM: return k_rx_bloom;
    case MP_PRETOK_VIKING: return k_rx_viking;
    case MP_PRETOK_TEKKEN: return k_rx_tekken;
    case MP_PRETOK_CHAMELEON: return k_rx_chameleon;
    case MP_PRETOK_GPT4O: return k_rx_gpt4o;
    case MP_PRETOK_GRANITE_EMB_MULTI: return k_rx_granite_emb_multi;
    case MP_PRETOK_TINY_AYA: return k_rx_tiny_aya;
    case MP_PRETOK_SUPERBPE: return k_rx_superbpe;
    case MP_PRETOK_BAILINGMOE: return k_rx_bailingmoe;
    case MP_PRETOK_SEED_CODER: return k_rx_seed_coder;
    case MP_PRETOK_UFAKZEKA: return k_rx_ufakzeka;
    case MP_PRETOK_AFMOE: return k_rx_afmoe;
    case MP_PRETOK_LAGUNA: return k_rx_laguna;
    case MP_PRETOK_EXAONE_MOE: return k_rx_exaone_moe;
    case MP_PRETOK_GEMMA4:
    case MP_PRETOK_SARVAM_MOE: return k_rx_gemma4;
    case MP_PRETOK_MINICPM5: return k_rx_minicpm5;
    case MP_PRETOK_WHITESPACE: return k_rx_whitespace;
    case MP_PRETOK_JAIS2: return k_rx_jais2;
    case MP_PRETOK_SPARK2_5: return k_rx_spark2_5;
    case MP_PRETOK_YOUTU: return k_rx_youtu;
    case MP_PRETOK_DEFAULT:
    default: return k_rx_default;
    }
}

void mp_pretok_free(mp_pretok *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_rx; i++)
        pcre2_code_free(p->rx[i].re);
    free(p);
}

int mp_pretok_create(mp_pretok **out, mp_pretok_kind kind, mp_err *err)
{
    *out = NULL;
    int st = mp_cpt_init();
    if (st != MP_OK)
        return mp_err_set(err, st, "tokenizer: cannot build the Unicode category table");
    mp_pretok *p = calloc(1, sizeof(*p));
    if (!p)
        return mp_err_set(err, MP_E_NOMEM, "tokenizer: out of memory");
    p->kind = kind;
    const char *const *list = regex_list(kind);
    for (int i = 0; list[i]; i++) {
        mp_pretok_rx *r = &p->rx[p->n_rx++];
        const char *rx = list[i];
        if (strcmp(rx, RX_GPT2) == 0) {
            r->custom = RX_CUSTOM_GPT2;
            continue;
        }
        if (strcmp(rx, RX_LLAMA3) == 0) {
            r->custom = RX_CUSTOM_LLAMA3;
            continue;
        }
        if (strcmp(rx, RX_QWEN2) == 0) {
            r->custom = RX_CUSTOM_QWEN2;
            continue;
        }
        if (strcmp(rx, RX_KIMI_K2) == 0) {
            r->custom = RX_CUSTOM_KIMI_K2;
            continue;
        }
        if (strcmp(rx, RX_QWEN35) == 0) {
            r->custom = RX_CUSTOM_QWEN35;
            continue;
        }
        if (strcmp(rx, RX_AFMOE_DIGITS) == 0 || strcmp(rx, RX_TINY_AYA_DIGITS) == 0) {
            r->custom = RX_CUSTOM_DIGIT_GROUPS;
            continue;
        }
        if (strcmp(rx, RX_NEWLINES) == 0) {
            r->custom = RX_CUSTOM_NEWLINES;
            continue;
        }
        int errcode;
        PCRE2_SIZE erroff;
        if (uses_categories(rx)) {
            char *c = collapse_regex(rx);
            if (!c) {
                mp_pretok_free(p);
                return mp_err_set(err, MP_E_NOMEM, "tokenizer: out of memory");
            }
            /* Byte mode: the category bytes 0xD0..0xD5 are plain literals. */
            r->re = pcre2_compile((PCRE2_SPTR)c, PCRE2_ZERO_TERMINATED, PCRE2_DOLLAR_ENDONLY, &errcode,
                                  &erroff, NULL);
            free(c);
            r->collapsed = true;
        } else {
            r->re = pcre2_compile((PCRE2_SPTR)rx, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY,
                                  &errcode, &erroff, NULL);
        }
        if (!r->re) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(errcode, msg, sizeof(msg));
            mp_pretok_free(p);
            return mp_err_set(err, MP_E_UNSUPPORTED, "tokenizer: PCRE2 rejects pre-tokenizer regex %d at %zu: %s",
                              i, (size_t)erroff, (const char *)msg);
        }
        (void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
    }
    *out = p;
    return MP_OK;
}

/* ---- Splitting ---------------------------------------------------------- */

typedef struct lenvec {
    size_t *v;
    size_t n, cap;
    bool oom;
} lenvec;

static void lv_push(lenvec *l, size_t x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
}

#define OUT_OF_RANGE 0xFFFFFFFFu

/* View of one fragment [ini, end) of the code points; positions outside it
 * read as OUT_OF_RANGE with no flags, as in llama.cpp's matchers. */
typedef struct frag {
    const uint32_t *cpts;
    size_t ini, end, prev_end;
    lenvec *out;
} frag;

static inline uint32_t fr_cpt(const frag *f, size_t pos)
{
    return (pos >= f->ini && pos < f->end) ? f->cpts[pos] : OUT_OF_RANGE;
}
static inline uint8_t fr_flags(const frag *f, size_t pos)
{
    return (pos >= f->ini && pos < f->end) ? mp_cpt_flags(f->cpts[pos]) : 0;
}
/* Emits the word [prev_end, end) if non-empty; returns its length. */
static inline size_t fr_emit(frag *f, size_t end)
{
    size_t len = end - f->prev_end;
    if (len > 0)
        lv_push(f->out, len);
    f->prev_end = end;
    return len;
}

#define F_L(fl) ((fl) & MP_CPT_LETTER)
#define F_N(fl) ((fl) & MP_CPT_NUMBER)
#define F_WS(fl) ((fl) & MP_CPT_WHITESPACE)

/* Shared tail of the matchers: whitespace runs. with_newlines selects the
 * Llama-3/Qwen2 variant that also has \s*[\r\n]+. */
static void match_whitespace(frag *f, size_t *ppos, bool with_newlines)
{
    size_t pos = *ppos;
    size_t nws = 0, last_nl_end = 0;
    while (F_WS(fr_flags(f, pos + nws))) {
        uint32_t c = fr_cpt(f, pos + nws);
        if (with_newlines && (c == '\r' || c == '\n'))
            last_nl_end = pos + nws + 1;
        nws++;
    }
    if (last_nl_end > 0) { /* \s*[\r\n]+ */
        pos = last_nl_end;
        fr_emit(f, pos);
    } else if (nws > 1 && fr_cpt(f, pos + nws) != OUT_OF_RANGE) { /* \s+(?!\S) */
        pos += nws - 1;
        fr_emit(f, pos);
    } else if (nws > 0) { /* \s+ */
        pos += nws;
        fr_emit(f, pos);
    } else { /* no rule matched: the code point alone */
        fr_emit(f, ++pos);
    }
    *ppos = pos;
}

/* 's|'t|'re|'ve|'m|'ll|'d, optionally ASCII-case-insensitive; returns the
 * match length (0 = none). */
static size_t match_contraction(const frag *f, size_t pos, bool icase)
{
    if (fr_cpt(f, pos) != '\'' || pos + 1 >= f->end)
        return 0;
    uint32_t a = fr_cpt(f, pos + 1);
    if (icase && a >= 'A' && a <= 'Z')
        a += 32;
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (pos + 2 < f->end) {
        uint32_t b = fr_cpt(f, pos + 2);
        if (icase && b >= 'A' && b <= 'Z')
            b += 32;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return 3;
    }
    return 0;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(frag *f)
{
    size_t pos = f->ini;
    while (pos < f->end) {
        uint32_t cpt = fr_cpt(f, pos);
        uint8_t fl = fr_flags(f, pos);
        size_t c = match_contraction(f, pos, false);
        if (c) {
            pos += fr_emit(f, pos + c);
            continue;
        }
        uint8_t fl2 = cpt == ' ' ? fr_flags(f, pos + 1) : fl;
        if (F_L(fl2)) {
            pos += (cpt == ' ');
            while (F_L(fl2))
                fl2 = fr_flags(f, ++pos);
            fr_emit(f, pos);
            continue;
        }
        if (F_N(fl2)) {
            pos += (cpt == ' ');
            while (F_N(fl2))
                fl2 = fr_flags(f, ++pos);
            fr_emit(f, pos);
            continue;
        }
        if (!(F_WS(fl2) | F_L(fl2) | F_N(fl2)) && fl2) {
            pos += (cpt == ' ');
            while (!(F_WS(fl2) | F_L(fl2) | F_N(fl2)) && fl2)
                fl2 = fr_flags(f, ++pos);
            fr_emit(f, pos);
            continue;
        }
        match_whitespace(f, &pos, false);
    }
}

/* Llama-3 (max_digits 3) and Qwen2 (max_digits 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * and Qwen3.5 (marks): \p{M} joins \p{L} in the letter runs and leaves the
 * punctuation runs. */
static void split_llama3(frag *f, size_t max_digits, bool marks)
{
    size_t pos = f->ini;
    while (pos < f->end) {
        uint32_t cpt = fr_cpt(f, pos);
        uint8_t fl = fr_flags(f, pos);
        size_t c = match_contraction(f, pos, true);
        if (c) {
            pos += fr_emit(f, pos + c);
            continue;
        }
        const uint8_t word = MP_CPT_LETTER | (marks ? MP_CPT_MARK : 0);
        if (!(cpt == '\r' || cpt == '\n' || F_N(fl))) {
            if ((fl & word) || (fr_flags(f, pos + 1) & word)) {
                pos++;
                while (fr_flags(f, pos) & word)
                    pos++;
                fr_emit(f, pos);
                continue;
            }
        }
        if (F_N(fl)) {
            size_t ini = pos;
            while (F_N(fr_flags(f, pos))) {
                if (++pos - ini >= max_digits) {
                    fr_emit(f, pos);
                    ini = pos;
                }
            }
            fr_emit(f, pos);
            continue;
        }
        uint8_t fl2 = cpt == ' ' ? fr_flags(f, pos + 1) : fl;
        const uint8_t stop = MP_CPT_WHITESPACE | MP_CPT_NUMBER | word;
        /* The guard tests the current code point's flags (always set in
         * range), not fl2's: a lone trailing space is taken here. */
        if (!(fl2 & stop) && fl) {
            pos += (cpt == ' ');
            while (!(fl2 & stop) && fl2)
                fl2 = fr_flags(f, ++pos);
            uint32_t c2 = fr_cpt(f, pos);
            while (c2 == '\r' || c2 == '\n')
                c2 = fr_cpt(f, ++pos);
            fr_emit(f, pos);
            continue;
        }
        match_whitespace(f, &pos, true);
    }
}

/* The ideograph blocks llama.cpp's Kimi-K2 matcher takes for \p{Han}
 * (unicode_cpt_is_han): the CJK Unified Ideographs, extensions A-F and the
 * compatibility blocks; not the radicals, not U+3007. */
static bool is_han(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2EBEF) /* extensions C, D, E, F: contiguous */ ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* A letter that is not Han, at pos (false outside the fragment). */
static inline bool kimi_letter(const frag *f, size_t pos)
{
    return F_L(fr_flags(f, pos)) && !is_han(fr_cpt(f, pos));
}

/* Kimi-K2 (tiktoken's pattern, as llama.cpp's matcher decides it):
 * [\p{Han}]+ | [^\r\n\p{L}\p{N}]? non-Han letters+ ('s|'t|'re|'ve|'m|'ll|'d,
 * any case)? | \p{N}{1,3} | ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ |
 * \s+(?!\S) | \s+. Letters here are all of \p{L} (the case split of the
 * original pattern makes no difference to where a run ends), and a Han
 * ideograph ends a letter run. */
static void split_kimi_k2(frag *f)
{
    size_t pos = f->ini;
    while (pos < f->end) {
        uint32_t cpt = fr_cpt(f, pos);
        uint8_t fl = fr_flags(f, pos);
        if (is_han(cpt)) {
            while (is_han(fr_cpt(f, pos)))
                pos++;
            fr_emit(f, pos);
            continue;
        }
        /* a non-letter, non-number, non-newline lead may start a word */
        const bool lead = !(cpt == '\r' || cpt == '\n' || F_L(fl) || F_N(fl));
        if ((F_L(fl) && !is_han(cpt)) || (lead && kimi_letter(f, pos + 1))) {
            pos += lead;
            while (kimi_letter(f, pos))
                pos++;
            pos += match_contraction(f, pos, true);
            fr_emit(f, pos);
            continue;
        }
        if (F_N(fl)) {
            size_t ini = pos;
            while (F_N(fr_flags(f, pos))) {
                if (++pos - ini >= 3) {
                    fr_emit(f, pos);
                    ini = pos;
                }
            }
            fr_emit(f, pos);
            continue;
        }
        uint8_t fl2 = cpt == ' ' ? fr_flags(f, pos + 1) : fl;
        if (!(F_WS(fl2) | F_L(fl2) | F_N(fl2)) && fl2) {
            pos += (cpt == ' ');
            while (!(F_WS(fl2) | F_L(fl2) | F_N(fl2)) && fl2)
                fl2 = fr_flags(f, ++pos);
            uint32_t c2 = fr_cpt(f, pos);
            while (c2 == '\r' || c2 == '\n')
                c2 = fr_cpt(f, ++pos);
            fr_emit(f, pos);
            continue;
        }
        match_whitespace(f, &pos, true);
    }
}

/* AFMoE's digit rule (llama.cpp also runs it for tiny_aya's
 * \d{1,3}(?=(?:\d{3})*\b)): each run of \p{N} is cut into a leading group
 * of (length mod 3) digits and then threes, counted from the run's start.
 * As in llama.cpp, the text before a run is not a word of its own: it joins
 * the run's first group ("ab1234" -> "ab1", "234"); text after the last run
 * is one word. */
static void split_digit_groups(frag *f)
{
    size_t pos = f->ini;
    while (pos < f->end) {
        if (!F_N(fr_flags(f, pos))) {
            pos++;
            continue;
        }
        size_t start = pos;
        while (pos < f->end && F_N(fr_flags(f, pos)))
            pos++;
        size_t cur = start, rem = (pos - start) % 3;
        if (rem) {
            fr_emit(f, cur + rem);
            cur += rem;
        }
        for (; cur < pos; cur += 3)
            fr_emit(f, cur + 3);
    }
    if (f->prev_end < f->end)
        fr_emit(f, f->end);
}

/* [^\n]+|[\n]+: runs of newlines and runs of everything else. */
static void split_newlines(frag *f)
{
    size_t pos = f->ini;
    while (pos < f->end) {
        const bool nl = f->cpts[pos] == '\n';
        while (pos < f->end && (f->cpts[pos] == '\n') == nl)
            pos++;
        fr_emit(f, pos);
    }
}

/* Subjects for the PCRE2 regexes, built on first need. */
typedef struct subjects {
    const uint32_t *cpts;
    size_t n;
    uint8_t *collapsed; /* n bytes */
    char *utf8;         /* UTF-8 of the code points (non-ASCII whitespace -> \v) */
    size_t *byte_of;    /* n + 1 entries: byte offset of code point i in utf8 */
} subjects;

static int build_collapsed(subjects *s)
{
    s->collapsed = malloc(s->n ? s->n : 1);
    if (!s->collapsed)
        return MP_E_NOMEM;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->cpts[i];
        if (c < 128) {
            s->collapsed[i] = (uint8_t)c;
            continue;
        }
        uint8_t fl = mp_cpt_flags(c);
        uint8_t b = COL_OTHER;
        if (F_WS(fl))
            b = 0x0B;
        else if (fl & MP_CPT_NUMBER)
            b = COL_NUMBER;
        else if (fl & MP_CPT_LETTER)
            b = COL_LETTER;
        else if (fl & MP_CPT_PUNCT)
            b = COL_PUNCT;
        else if (fl & MP_CPT_MARK)
            b = COL_MARK;
        else if (fl & MP_CPT_SYMBOL)
            b = COL_SYMBOL;
        s->collapsed[i] = b;
    }
    return MP_OK;
}

static int build_utf8(subjects *s)
{
    s->utf8 = malloc(s->n * 4 + 1);
    s->byte_of = malloc((s->n + 1) * sizeof(size_t));
    if (!s->utf8 || !s->byte_of)
        return MP_E_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->cpts[i];
        if (c > 0x7F && F_WS(mp_cpt_flags(c)))
            c = 0x0B;
        else if (c >= 0xD800 && c <= 0xDFFF)
            c = 0xE000; /* PCRE2 needs valid UTF-8: the next code point up falls in the same
                         * classes of every regex here (AFMoE's U+8C48-U+FAFF takes both) */
        else if (c > 0x10FFFF)
            c = MP_CPT_REPLACEMENT;
        s->byte_of[i] = o;
        o += mp_utf8_encode(c, s->utf8 + o);
    }
    s->byte_of[s->n] = o;
    return MP_OK;
}

/* Code point index (relative to `base`) of byte offset b within the
 * fragment starting at code point base. */
static size_t cpt_index(const subjects *s, size_t base, size_t count, size_t b)
{
    size_t lo = base, hi = base + count; /* byte_of[lo] <= target <= byte_of[hi] */
    size_t target = s->byte_of[base] + b;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->byte_of[mid] < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - base;
}

/* Matcher state for one split: a bigger JIT stack is made only when a
 * match runs out of the default 32 KiB (long runs under the GPT-4o-style
 * lookahead patterns backtrack deeply). */
typedef struct matcher {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
} matcher;

static int do_match(matcher *m, const pcre2_code *re, const char *subj, size_t len, size_t off, uint32_t opts)
{
    int rc = pcre2_match(re, (PCRE2_SPTR)subj, len, off, opts | PCRE2_NO_UTF_CHECK, m->md, m->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !m->jit) {
        m->mctx = pcre2_match_context_create(NULL);
        m->jit = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, NULL);
        if (!m->mctx || !m->jit)
            return PCRE2_ERROR_NOMEMORY;
        pcre2_jit_stack_assign(m->mctx, NULL, m->jit);
        rc = pcre2_match(re, (PCRE2_SPTR)subj, len, off, opts | PCRE2_NO_UTF_CHECK, m->md, m->mctx);
    }
    return rc;
}

/* One regex over each fragment: matches and the gaps between them become
 * words (llama.cpp's unicode_regex_split_stl). Empty matches follow
 * std::regex_iterator: one cuts the fragment where it stands (no word of
 * its own), then a non-empty match anchored there is tried before the
 * search moves one code point on. */
static int split_regex(const mp_pretok_rx *r, subjects *s, const lenvec *in, lenvec *out)
{
    int st;
    if (r->collapsed && !s->collapsed && (st = build_collapsed(s)) != MP_OK)
        return st;
    if (!r->collapsed && !s->utf8 && (st = build_utf8(s)) != MP_OK)
        return st;
    matcher m = {.md = pcre2_match_data_create_from_pattern(r->re, NULL)};
    if (!m.md)
        return MP_E_NOMEM;
    size_t start = 0;
    st = MP_OK;
    for (size_t k = 0; k < in->n && st == MP_OK; k++) {
        size_t count = in->v[k];
        const char *subj;
        size_t subj_len;
        if (r->collapsed) {
            subj = (const char *)s->collapsed + start;
            subj_len = count;
        } else {
            subj = s->utf8 + s->byte_of[start];
            subj_len = s->byte_of[start + count] - s->byte_of[start];
        }
        size_t done = 0; /* code points of this fragment already emitted */
        size_t off = 0;  /* byte offset where the next search starts */
        bool after_empty = false;
        for (;;) {
            int rc;
            if (after_empty) {
                rc = do_match(&m, r->re, subj, subj_len, off, PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED);
                if (rc == PCRE2_ERROR_NOMATCH) {
                    if (off >= subj_len)
                        break;
                    size_t c = r->collapsed ? off : cpt_index(s, start, count, off);
                    off = r->collapsed ? off + 1 : s->byte_of[start + c + 1] - s->byte_of[start];
                    rc = do_match(&m, r->re, subj, subj_len, off, 0);
                }
            } else {
                rc = do_match(&m, r->re, subj, subj_len, off, 0);
            }
            if (rc == PCRE2_ERROR_NOMATCH)
                break;
            if (rc < 0) {
                st = rc == PCRE2_ERROR_NOMEMORY ? MP_E_NOMEM : MP_E_UNSUPPORTED;
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m.md);
            size_t ms = ov[0], me = ov[1];
            if (!r->collapsed) {
                ms = cpt_index(s, start, count, ms);
                me = cpt_index(s, start, count, me);
            }
            if (ms > done)
                lv_push(out, ms - done);
            if (me > ms)
                lv_push(out, me - ms);
            done = me;
            off = ov[1];
            after_empty = me == ms;
        }
        if (done < count)
            lv_push(out, count - done);
        start += count;
    }
    pcre2_match_data_free(m.md);
    pcre2_match_context_free(m.mctx);
    pcre2_jit_stack_free(m.jit);
    return out->oom ? MP_E_NOMEM : st;
}

int64_t mp_pretok_split(const mp_pretok *p, const uint32_t *cpts, size_t n, size_t **word_lens)
{
    *word_lens = NULL;
    if (n == 0)
        return 0;
    lenvec cur = {0}, next = {0};
    subjects subj = {.cpts = cpts, .n = n};
    int st = MP_OK;
    lv_push(&cur, n);
    for (int i = 0; i < p->n_rx && st == MP_OK; i++) {
        const mp_pretok_rx *r = &p->rx[i];
        next.n = 0;
        if (r->custom) {
            size_t start = 0;
            for (size_t k = 0; k < cur.n; k++) {
                frag f = {.cpts = cpts, .ini = start, .end = start + cur.v[k], .prev_end = start, .out = &next};
                switch (r->custom) {
                case RX_CUSTOM_GPT2: split_gpt2(&f); break;
                case RX_CUSTOM_KIMI_K2: split_kimi_k2(&f); break;
                case RX_CUSTOM_LLAMA3: split_llama3(&f, 3, false); break;
                case RX_CUSTOM_QWEN2: split_llama3(&f, 1, false); break;
                case RX_CUSTOM_QWEN35: split_llama3(&f, 1, true); break;
                case RX_CUSTOM_DIGIT_GROUPS: split_digit_groups(&f); break;
                default: split_newlines(&f); break;
                }
                start += cur.v[k];
            }
            if (next.oom)
                st = MP_E_NOMEM;
        } else {
            st = split_regex(r, &subj, &cur, &next);
        }
        lenvec t = cur;
        cur = next;
        next = t;
    }
    free(next.v);
    free(subj.collapsed);
    free(subj.utf8);
    free(subj.byte_of);
    if (st != MP_OK || cur.oom) {
        free(cur.v);
        return st != MP_OK ? st : MP_E_NOMEM;
    }
    *word_lens = cur.v;
    return (int64_t)cur.n;
}
