// Text handling for the tokenizer: the byte-level alphabet, UTF-8 validation with an NFC quick
// check, NFC through utf8proc, and the PCRE2 split regex.
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "encoders/tokenizer_model.h"
#include "kernels/error.h"

namespace nuri {

namespace {

// Code point of byte b in the GPT-2 alphabet: printable Latin-1 bytes stand for themselves, the
// others are moved to 256 and up, in byte order.
std::array<int32_t, 256> make_byte_code_points() {
  std::array<int32_t, 256> points{};
  int32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    points[b] = printable ? b : next++;
  }
  return points;
}

// Appends the UTF-8 encoding of code point `c` (below 0x800 here).
void append_utf8(std::string& out, int32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// Whether NFC leaves code point c alone in any context: it has no canonical decomposition that
// NFC would change, combining class 0, and it never ends a canonical composition. Ranges cover
// Latin-1 and Latin Extended (below U+0300), compatibility jamo, Hangul syllables (a syllable
// can only compose with a following trailing jamo, which is outside these ranges), CJK
// ideographs, common punctuation and emoji; the check is exhaustively tested against utf8proc.
bool nfc_inert(uint32_t c) {
  if (c < 0x300) return true;
  if (c >= 0xAC00 && c <= 0xD7A3) return true;
  if (c >= 0x3131 && c <= 0x318E) return true;
  if (c >= 0x4E00 && c <= 0x9FFF) return true;
  if (c >= 0x2010 && c <= 0x2027) return true;
  if (c >= 0x2030 && c <= 0x205E) return true;
  if (c >= 0x3000 && c <= 0x3029) return true;
  if (c >= 0xFF01 && c <= 0xFF60) return true;
  if (c >= 0x1F300 && c <= 0x1FAFF) return true;
  return false;
}

// Per-thread PCRE2 state: match data for one pair (the split needs group 0 only) and a JIT
// stack that grows up to 8 MiB, so long runs of one class cannot exhaust it.
struct MatchState {
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    NURI_CHECK(data && context && stack, "tokenizer: out of memory for PCRE2 match state");
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;
  ~MatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

const std::array<std::string, 256>& byte_level_chars() {
  static const std::array<std::string, 256> chars = [] {
    std::array<std::string, 256> out;
    const auto points = make_byte_code_points();
    for (int b = 0; b < 256; ++b) append_utf8(out[b], points[b]);
    return out;
  }();
  return chars;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  const auto& chars = byte_level_chars();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += chars[static_cast<uint8_t>(c)];
  return out;
}

std::string byte_level_to_bytes(std::string_view token) {
  static const std::vector<int16_t> byte_of = [] {
    std::vector<int16_t> table(324, -1);
    const auto points = make_byte_code_points();
    for (int b = 0; b < 256; ++b) table[points[b]] = static_cast<int16_t>(b);
    return table;
  }();
  std::string out;
  out.reserve(token.size());
  const auto* p = reinterpret_cast<const uint8_t*>(token.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(token.size());
  while (left > 0) {
    utf8proc_int32_t c = 0;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &c);
    if (n <= 0) {  // not UTF-8: keep the byte as it is
      out += static_cast<char>(*p);
      n = 1;
    } else if (c < static_cast<int32_t>(byte_of.size()) && byte_of[c] >= 0) {
      out += static_cast<char>(byte_of[c]);
    } else {
      out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    }
    p += n;
    left -= n;
  }
  return out;
}

size_t check_utf8(std::string_view text, bool& needs_nfc) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  needs_nfc = false;
  while (i < n) {
    // Eight ASCII bytes at a time.
    while (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, s + i, 8);
      if (word & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const uint8_t b = s[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    uint32_t c = 0;
    size_t len = 0;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
      c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      c = b & 0x0F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      c = b & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      c = (c << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF.
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF)) {
      return i;
    }
    if (!nfc_inert(c)) needs_nfc = true;
    i += len;
  }
  return std::string_view::npos;
}

namespace {

// NFC of valid UTF-8 through utf8proc.
std::string nfc_whole(std::string_view text) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &out,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(out, &std::free);
  NURI_CHECK(n >= 0, "tokenizer: NFC normalization failed: ", utf8proc_errmsg(n));
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
}

}  // namespace

std::string nfc(std::string_view text) {
  // NFC never acts across the start of an NFC-inert character, so only the stretches from the
  // character before a run of other code points up to the next inert character go through
  // utf8proc; the rest is copied.
  std::string out;
  out.reserve(text.size() + 16);
  size_t copied = 0;      // text before this is in `out`
  size_t last_start = 0;  // start of the last inert character seen
  size_t i = 0;
  while (i < text.size()) {
    size_t len = 0;
    utf8proc_int32_t c = 0;
    len = static_cast<size_t>(
        utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i),
                         static_cast<utf8proc_ssize_t>(text.size() - i), &c));
    if (nfc_inert(static_cast<uint32_t>(c))) {
      last_start = i;
      i += len;
      continue;
    }
    size_t end = i + len;
    while (end < text.size()) {
      const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + end),
                                      static_cast<utf8proc_ssize_t>(text.size() - end), &c);
      if (nfc_inert(static_cast<uint32_t>(c))) break;
      end += static_cast<size_t>(n);
    }
    const size_t begin = std::max(copied, std::min(last_start, i));
    out.append(text.substr(copied, begin - copied));
    out += nfc_whole(text.substr(begin, end - begin));
    copied = end;
    last_start = end;
    i = end;
  }
  out.append(text.substr(copied));
  return out;
}

Regex::Regex(const std::string& pattern, const std::string& origin) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    fail(origin, ": regex does not compile at offset ", offset, ": ",
         reinterpret_cast<const char*>(message));
  }
  const int jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  if (jit != 0) {
    pcre2_code_free(code);
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(jit, message, sizeof(message));
    fail(origin, ": regex JIT compilation failed: ", reinterpret_cast<const char*>(message));
  }
  code_ = code;
}

Regex::~Regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

bool Regex::find(std::string_view text, size_t start, size_t& begin, size_t& end) const {
  MatchState& state = match_state();
  const int rc = pcre2_jit_match(static_cast<const pcre2_code*>(code_),
                                 reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, 0,
                                 state.data, state.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(rc, message, sizeof(message));
    fail("tokenizer: pre-tokenizer regex failed at byte ", start, ": ",
         reinterpret_cast<const char*>(message));
  }
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
  begin = ovector[0];
  end = ovector[1];
  return true;
}

bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

Utf8Shape utf8_shape(std::string_view bytes) {
  const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  if (n == 0) return Utf8Shape::kOther;
  if (n == 1 && (s[0] & 0xC0) == 0x80) return Utf8Shape::kContinuation;
  size_t i = 0;
  while (i < n) {
    const uint8_t b = s[i];
    const size_t len = b < 0x80             ? 1
                       : (b & 0xE0) == 0xC0 ? 2
                       : (b & 0xF0) == 0xE0 ? 3
                       : (b & 0xF8) == 0xF0 ? 4
                                            : 0;
    if (len == 0) return Utf8Shape::kOther;
    size_t k = 1;
    while (k < len && i + k < n && (s[i + k] & 0xC0) == 0x80) ++k;
    if (k < len) {
      // A character cut short: a prefix only when it is all there is.
      return (i == 0 && i + k == n) ? Utf8Shape::kPrefix : Utf8Shape::kOther;
    }
    i += len;
  }
  return Utf8Shape::kWhole;
}

}  // namespace nuri
