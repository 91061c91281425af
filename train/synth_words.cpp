// The synthetic corpus's words: the English and Korean vocabulary, the sentence templates built
// from it, and the colour, shape and voice tables.
#include <map>
#include <string_view>

#include "kernels/error.h"
#include "train/synth.h"
#include "train/synth_parts.h"

namespace nuri {
namespace {

// Words of one language and role, space separated.
struct WordGroup {
  const char* language;
  const char* role;
  std::string_view words;
};

// Roles: det (determiner), adj (adjective, attributive form in Korean), noun, verb (transitive;
// English third person, Korean polite present), verb_i (intransitive), adv (adverb or time).
constexpr WordGroup kWordGroups[] = {
    {"en", "det", "the my your our this that his"},
    {"en", "noun",
     "cat dog bird fish horse tree river mountain city house car train book apple bread water "
     "teacher student doctor child friend garden window door table chair phone computer school "
     "market road bridge island ocean forest flower cloud boat ship letter song ball box cup key "
     "lamp picture shirt shoe hat clock kitchen village milk bag farmer baby king rabbit bottle"},
    {"en", "adj",
     "big small red green blue old new happy quiet bright dark warm cold fast slow tall young "
     "clean busy heavy light soft loud sweet strong gentle kind pretty brown little"},
    {"en", "verb",
     "sees likes finds carries watches opens follows paints helps holds wants needs takes brings "
     "visits cleans builds reads draws moves sells buys calls counts meets pushes pulls loves "
     "keeps closes"},
    {"en", "verb_i", "sleeps runs sings waits smiles falls swims jumps arrives rests"},
    {"en", "adv",
     "today tonight yesterday slowly quickly often again quietly together happily carefully "
     "sometimes now here there"},
    {"ko", "det", "그 이 저 우리 내"},
    {"ko", "noun",
     "고양이 강아지 새 물고기 말 나무 강 산 도시 집 자동차 기차 책 사과 빵 물 선생님 학생 의사 "
     "아이 친구 정원 창문 문 책상 의자 전화 컴퓨터 학교 시장 길 다리 섬 바다 숲 꽃 구름 배 편지 "
     "노래 공 상자 컵 열쇠 등불 그림 셔츠 신발 모자 시계 부엌 마을 우유 가방 농부 아기 왕 토끼 "
     "병 음악"},
    {"ko", "adj",
     "큰 작은 빨간 파란 오래된 새로운 행복한 조용한 밝은 어두운 따뜻한 차가운 빠른 느린 젊은 "
     "깨끗한 바쁜 무거운 가벼운 부드러운 시끄러운 달콤한 강한 친절한 예쁜"},
    {"ko", "verb",
     "봐요 좋아해요 찾아요 열어요 따라가요 그려요 도와요 잡아요 원해요 가져와요 방문해요 "
     "청소해요 만들어요 읽어요 옮겨요 팔아요 사요 불러요 세어요 만나요 밀어요 당겨요 사랑해요 "
     "기다려요 씻어요 마셔요 먹어요 닫아요 들어요 알아요"},
    {"ko", "verb_i", "자요 달려요 노래해요 웃어요 울어요 수영해요 뛰어요 도착해요 쉬어요 걸어요"},
    {"ko", "adv",
     "오늘 내일 어제 천천히 빨리 자주 다시 조용히 함께 지금 가끔 항상 매일 아침에 저녁에"},
};

// Sentence templates: roles separated by spaces; in Korean, noun_s takes the subject particle
// and noun_o the object particle. Each has 3 to 8 words.
const std::map<std::string, std::vector<std::string>>& templates() {
  static const std::map<std::string, std::vector<std::string>> table = {
      {"en",
       {"det noun verb_i", "det adj noun verb_i", "det noun verb_i adv", "det noun verb det noun",
        "det adj noun verb_i adv", "det adj noun verb det noun", "det noun verb det adj noun",
        "det adj noun verb det adj noun", "det noun verb det adj noun adv",
        "det adj noun verb det adj noun adv"}},
      {"ko",
       {"noun_s noun_o verb", "adv noun_s verb_i", "det noun_s verb_i", "adj noun_s noun_o verb",
        "noun_s adj noun_o verb", "adv adj noun_s verb_i", "adj noun_s adj noun_o verb",
        "det adj noun_s noun_o verb", "adv adj noun_s adj noun_o verb",
        "det adj noun_s adv noun_o verb", "det adj noun_s adv adj noun_o verb",
        "adv det adj noun_s adv adj noun_o verb"}},
  };
  return table;
}

// The words of the table, split, by language and role.
const std::map<std::string, std::map<std::string, std::vector<std::string>>>& words_by_role() {
  static const auto table = [] {
    std::map<std::string, std::map<std::string, std::vector<std::string>>> out;
    for (const WordGroup& group : kWordGroups) {
      std::vector<std::string>& words = out[group.language][group.role];
      size_t start = 0;
      while (start < group.words.size()) {
        size_t end = group.words.find(' ', start);
        if (end == std::string_view::npos) end = group.words.size();
        if (end > start) words.emplace_back(group.words.substr(start, end - start));
        start = end + 1;
      }
    }
    return out;
  }();
  return table;
}

// True when the last syllable of a Hangul word ends in a consonant (it has a final jamo), which
// picks the particle: 이/을 after a consonant, 가/를 after a vowel.
bool ends_in_consonant(const std::string& word) {
  // The last code point of the UTF-8 word (Hangul syllables take three bytes).
  NURI_CHECK(word.size() >= 3, "synth: '", word, "' is not a Hangul word");
  const auto* b = reinterpret_cast<const unsigned char*>(word.data() + word.size() - 3);
  const uint32_t code = ((b[0] & 0x0Fu) << 12) | ((b[1] & 0x3Fu) << 6) | (b[2] & 0x3Fu);
  NURI_CHECK(code >= 0xAC00 && code <= 0xD7A3, "synth: '", word,
             "' does not end in a Hangul syllable");
  return (code - 0xAC00) % 28 != 0;
}

}  // namespace

const std::vector<SynthWord>& synth_vocabulary() {
  static const std::vector<SynthWord> vocabulary = [] {
    std::vector<SynthWord> out;
    for (const auto& [language, roles] : words_by_role()) {
      for (const auto& [role, words] : roles) {
        for (const std::string& word : words) out.push_back({word, language, role});
      }
    }
    return out;
  }();
  return vocabulary;
}

namespace synth {

const std::vector<Colour>& colours() {
  static const std::vector<Colour> table = {
      {{"red", "빨간색"}, 220, 30, 35},     {{"green", "초록색"}, 35, 165, 60},
      {{"blue", "파란색"}, 35, 75, 220},    {{"yellow", "노란색"}, 240, 215, 35},
      {{"purple", "보라색"}, 135, 50, 180}, {{"orange", "주황색"}, 245, 135, 25},
      {{"white", "흰색"}, 245, 245, 245},   {{"black", "검은색"}, 15, 15, 15},
  };
  return table;
}

const std::vector<Named>& shapes() {
  static const std::vector<Named> table = {
      {"circle", "원"},      {"square", "사각형"}, {"triangle", "삼각형"}, {"star", "별"},
      {"hexagon", "육각형"}, {"cross", "십자가"},  {"diamond", "마름모"},
  };
  return table;
}

const std::vector<std::string>& voices(const std::string& language) {
  static const std::map<std::string, std::vector<std::string>> table = {
      {"en", {"en-us+m3", "en-us+f2", "en+m1", "en-gb-x-rp+f4"}},
      {"ko", {"ko+m3", "ko+f2", "ko+m1", "ko+f4"}},
  };
  return table.at(language);
}

std::string make_sentence(Rng& rng, const std::string& language) {
  const auto& roles = words_by_role().at(language);
  const std::string& pattern = rng.pick(templates().at(language));
  std::string sentence;
  size_t start = 0;
  while (start < pattern.size()) {
    size_t end = pattern.find(' ', start);
    if (end == std::string::npos) end = pattern.size();
    const std::string role = pattern.substr(start, end - start);
    const bool subject = role == "noun_s", object = role == "noun_o";
    std::string word = rng.pick(roles.at(subject || object ? "noun" : role));
    if (subject) word += ends_in_consonant(word) ? "이" : "가";
    if (object) word += ends_in_consonant(word) ? "을" : "를";
    if (!sentence.empty()) sentence += ' ';
    sentence += word;
    start = end + 1;
  }
  return sentence;
}

const std::vector<std::string>& single_words(const std::string& language) {
  return words_by_role().at(language).at("noun");
}

}  // namespace synth
}  // namespace nuri
