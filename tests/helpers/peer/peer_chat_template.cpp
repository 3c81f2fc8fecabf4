// Renders conversations with llama.cpp's own chat-template code (libllama-common:
// common_chat_templates_init + common_chat_templates_apply, Jinja on), the reference
// for moepager's template/ interpreter (tests/test_chat_parity.sh).
//
//   peer-chat-template TEMPLATE.jinja CONVERSATIONS.txt OUTDIR NAME
//
//   peer-chat-template builtin:FORMAT CONVERSATIONS.txt OUTDIR NAME
//
// The first form renders through the Jinja path; the second through llama_chat_apply_template
// (libllama's named formats: "llama3", "mistral-v7", ...), the reference for moepager's
// built-in templates. Each writes OUTDIR/NAME.CONV.txt (the prompt, bytes as rendered) for every conversation
// (format: tests/data/chat/conversations.txt), or OUTDIR/NAME.CONV.err holding the
// exception's message when llama.cpp refuses. bos_token "<s>", eos_token "</s>", no
// model (add_bos/add_eos off). The clock is pinned (time(), clock_gettime() below) to
// 2026-01-15 12:00:00 UTC so dates in the prompt (strftime_now, date_string) repeat.
#include "chat.h"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

static const time_t PINNED = 1768478400; // 2026-01-15 12:00:00 UTC

extern "C" time_t time(time_t *t)
{
    if (t) *t = PINNED;
    return PINNED;
}

extern "C" int clock_gettime(clockid_t, struct timespec *ts)
{
    ts->tv_sec = PINNED;
    ts->tv_nsec = 0;
    return 0;
}

struct conv {
    std::string name;
    std::vector<common_chat_msg> msgs;
};

static std::string unescape(const std::string &s)
{
    std::string o;
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            i++;
            o += s[i] == 'n' ? '\n' : s[i];
        } else {
            o += s[i];
        }
    }
    return o;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s TEMPLATE.jinja CONVERSATIONS.txt OUTDIR NAME\n", argv[0]);
        return 2;
    }
    const bool builtin = strncmp(argv[1], "builtin:", 8) == 0;
    std::ifstream tf(builtin ? "/dev/null" : argv[1], std::ios::binary);
    std::stringstream ts;
    ts << tf.rdbuf();
    std::string tmpl = ts.str();
    std::ifstream cf(argv[2]);
    std::vector<conv> convs;
    for (std::string line; std::getline(cf, line);) {
        if (line.empty() || line[0] == '#') continue;
        if (line.rfind("= ", 0) == 0) {
            convs.push_back({line.substr(2), {}});
            continue;
        }
        size_t tab = line.find('\t');
        if (tab == std::string::npos || convs.empty()) {
            fprintf(stderr, "%s: bad line: %s\n", argv[2], line.c_str());
            return 2;
        }
        common_chat_msg m;
        m.role = line.substr(0, tab);
        m.content = unescape(line.substr(tab + 1));
        convs.back().msgs.push_back(m);
    }
    int n_ok = 0, n_err = 0;
    common_chat_templates_ptr tmpls;
    std::string init_err;
    if (!builtin) {
        try {
            tmpls = common_chat_templates_init(nullptr, tmpl, "<s>", "</s>");
        } catch (const std::exception &e) {
            init_err = e.what();
        }
    }
    for (const auto &c : convs) {
        std::string out, err;
        const bool gen = c.name.size() < 6 || c.name.compare(c.name.size() - 6, 6, "-nogen") != 0;
        if (builtin) {
            std::vector<llama_chat_message> chat;
            for (const auto &m : c.msgs) chat.push_back({m.role.c_str(), m.content.c_str()});
            std::vector<char> buf(1 << 16);
            int32_t n = llama_chat_apply_template(argv[1] + 8, chat.data(), chat.size(), gen, buf.data(), (int32_t)buf.size());
            if (n < 0 || n > (int32_t)buf.size()) err = "llama_chat_apply_template failed: " + std::to_string(n);
            else out.assign(buf.data(), (size_t)n);
        } else if (!tmpls) {
            err = "init: " + init_err;
        } else {
            try {
                common_chat_templates_inputs in;
                in.messages = c.msgs;
                in.use_jinja = true;
                in.add_generation_prompt = gen;
                out = common_chat_templates_apply(tmpls.get(), in).prompt;
            } catch (const std::exception &e) {
                err = e.what();
                if (err.empty()) err = "exception";
            }
        }
        std::string path = std::string(argv[3]) + "/" + argv[4] + "." + c.name + (err.empty() ? ".txt" : ".err");
        FILE *f = fopen(path.c_str(), "wb");
        if (!f) {
            perror(path.c_str());
            return 1;
        }
        const std::string &w = err.empty() ? out : err;
        fwrite(w.data(), 1, w.size(), f);
        fclose(f);
        (err.empty() ? n_ok : n_err)++;
    }
    printf("%s: %d rendered, %d refused\n", argv[4], n_ok, n_err);
    return 0;
}
