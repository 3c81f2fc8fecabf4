/* Chat prompts: messages -> the text the model was trained on. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ChatML (<|im_start|>role\ncontent<|im_end|>\n), the format llama.cpp
 * falls back to when a file has no template. Used until the Jinja renderer
 * (mp_chat_apply_template) is in the library. */
static int render_chatml(const cli_chat_msg *msgs, size_t n, bool add_gen, char **out, char *msg, size_t cap)
{
    size_t total = 1 + (add_gen ? 32 : 0);
    for (size_t i = 0; i < n; i++) total += strlen(msgs[i].role) + strlen(msgs[i].content) + 32;
    char *s = malloc(total), *p = s;
    if (!s) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "<|im_start|>%s\n%s<|im_end|>\n", msgs[i].role, msgs[i].content);
    if (add_gen) p += sprintf(p, "<|im_start|>assistant\n");
    *p = '\0';
    *out = s;
    return 0;
}

int cli_chat_render(const mp_engine *e, const char *tmpl, const cli_chat_msg *msgs, size_t n, bool add_gen,
                    char **out, char *msg, size_t cap)
{
    (void)e;
    if (tmpl && strcmp(tmpl, "chatml")) {
        snprintf(msg, cap, "--chat-template %s: only chatml is built in yet", tmpl);
        return -1;
    }
    return render_chatml(msgs, n, add_gen, out, msg, cap);
}
