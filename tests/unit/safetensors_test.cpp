// Safetensors reading and writing: round trips, aliasing of the mapping, atomic saves, a fixture
// written by an independent implementation, and rejection of malformed files.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "kernels/safetensors.h"
#include "tests/common/temp_dir.h"

namespace nuri {
namespace {

using test::TempDir;

namespace fs = std::filesystem;

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The 8 little-endian bytes of `value`.
std::string le64(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return out;
}

// A safetensors file: header length, `header` as given, then `data_bytes` bytes of data.
std::string file_bytes(const std::string& header, size_t data_bytes) {
  std::string data(data_bytes, '\0');
  for (size_t i = 0; i < data_bytes; ++i) data[i] = static_cast<char>(i * 7 + 1);
  return le64(header.size()) + header + data;
}

// The raw bytes of a CPU tensor.
std::string tensor_bytes(const Tensor& t) {
  return std::string(static_cast<const char*>(t.raw_data()), t.nbytes());
}

bool aliases(const SafetensorsFile& file, const Tensor& t) {
  const std::span<const std::byte> mapped = file.mapped_bytes();
  const auto* data = static_cast<const std::byte*>(t.raw_data());
  return data >= mapped.data() && data + t.nbytes() <= mapped.data() + mapped.size();
}

// Runs `action`, which must throw nuri::Error whose message starts with `path` and has `phrase`.
void expect_error(const std::function<void()>& action, const std::string& path,
                  const std::string& phrase) {
  try {
    action();
    ADD_FAILURE() << "no error; expected one containing: " << phrase;
  } catch (const Error& e) {
    const std::string message = e.what();
    if (std::getenv("NURI_TEST_VERBOSE")) std::cerr << message << "\n";
    EXPECT_EQ(message.rfind(path, 0), 0u) << "message does not start with the path: " << message;
    EXPECT_NE(message.find(phrase), std::string::npos)
        << "message lacks \"" << phrase << "\": " << message;
  }
}

template <class T>
Tensor make(std::vector<T> values, const Shape& shape) {
  return Tensor::from_data<T>(std::span<const T>(values), shape);
}

template <class Bits>
std::vector<Bits> bit_patterns(std::initializer_list<uint16_t> bits) {
  std::vector<Bits> out;
  for (uint16_t b : bits) out.push_back(Bits{b});
  return out;
}

TEST(Safetensors, RoundTripsEveryDtypeBitForBit) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  const float nan_payload = [] {
    const uint32_t bits = 0x7fc01234u;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }();
  std::vector<uint8_t> all_bytes(256);
  for (int i = 0; i < 256; ++i) all_bytes[i] = static_cast<uint8_t>(i);
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"u8.all", make<uint8_t>(all_bytes, {16, 16})},
      {"f32", make<float>({0.0f, -0.0f, 1.5f, -3.25e-30f, std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::denorm_min(), nan_payload},
                          {7})},
      // bf16 and f16 patterns: zeros, the smallest subnormal, the largest finite, inf, NaNs.
      {"bf16",
       make(bit_patterns<bf16_t>({0x0000, 0x8000, 0x0001, 0x7f7f, 0xff80, 0x7fc1}), {2, 3})},
      {"f16", make(bit_patterns<f16_t>({0x3c00, 0x8001, 0x7bff, 0xfc00, 0x7e01, 0x3555}), {3, 2})},
      {"i32", make<int32_t>({std::numeric_limits<int32_t>::min(), -1, 0, 7,
                             std::numeric_limits<int32_t>::max()},
                            {5})},
      {"i64", make<int64_t>({std::numeric_limits<int64_t>::min(), -2, (int64_t{1} << 53) + 1,
                             std::numeric_limits<int64_t>::max()},
                            {2, 2})},
      {"scalar", Tensor::scalar(2.75f)},
      {"empty", Tensor::empty({0}, DType::f16)},
      {"empty.3d", Tensor::empty({3, 0, 2}, DType::i64)},
      {"층.가중치", Tensor::full({2}, 4.0, DType::bf16)},
      {"émoji 🙂", make<uint8_t>({9}, {1})},
  };
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"설명", "유니코드 ✓"}, {"empty", ""}};
  save_safetensors(path, tensors, metadata);

  const SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_EQ(file.metadata(), metadata);
  EXPECT_EQ(file.names().size(), tensors.size());
  for (const auto& [name, original] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(file.contains(name));
    const SafetensorsEntry& entry = file.entry(name);
    EXPECT_EQ(entry.name, name);
    EXPECT_EQ(entry.dtype, original.dtype());
    EXPECT_EQ(entry.shape, original.shape());
    EXPECT_EQ(entry.end - entry.begin, original.nbytes());
    const Tensor loaded = file.tensor(name);
    EXPECT_EQ(loaded.dtype(), original.dtype());
    EXPECT_EQ(loaded.shape(), original.shape());
    EXPECT_TRUE(loaded.device().is_cpu());
    EXPECT_EQ(tensor_bytes(loaded), tensor_bytes(original));
  }
  EXPECT_FALSE(file.contains("missing"));
  EXPECT_EQ(file.tensor("scalar").item(), 2.75f);
}

TEST(Safetensors, DataIsOrderedWidestDtypeFirstAndAligned) {
  TempDir dir;
  const std::string path = dir.file("aligned.safetensors");
  save_safetensors(path, {{"u", make<uint8_t>({1, 2, 3}, {3})},
                          {"h", Tensor::full({3}, 1.0, DType::f16)},
                          {"f", Tensor::full({1}, 1.0)},
                          {"l", make<int64_t>({5}, {1})},
                          {"b", Tensor::full({1}, 2.0, DType::bf16)},
                          {"i", make<int32_t>({6}, {1})}});
  const std::string bytes = read_file(path);
  uint64_t header_bytes;
  std::memcpy(&header_bytes, bytes.data(), 8);
  EXPECT_EQ(header_bytes % 8, 0u);
  // The header is compact JSON followed by space padding only.
  const std::string header = bytes.substr(8, header_bytes);
  const size_t close = header.rfind('}');
  EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos);
  EXPECT_LT(header.size() - close - 1, 8u);

  const SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"l", "f", "i", "h", "b", "u"}));
  for (const std::string& name : file.names()) {
    SCOPED_TRACE(name);
    const Tensor t = file.tensor(name);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % dtype_size(t.dtype()), 0u);
    EXPECT_TRUE(aliases(file, t));
  }
}

TEST(Safetensors, AlignedTensorsAliasTheMappingAndOutliveTheFile) {
  TempDir dir;
  const std::string path = dir.file("alias.safetensors");
  save_safetensors(path, {{"w", Tensor::from_vector({1, 2, 3, 4}, {2, 2})}});
  const std::string before = read_file(path);
  Tensor w;
  {
    const SafetensorsFile file = SafetensorsFile::open(path);
    w = file.tensor("w");
    EXPECT_TRUE(aliases(file, w));
    EXPECT_EQ(file.tensor("w").raw_data(), w.raw_data());  // no copy on a second request
  }
  // The mapping stays alive through the tensor, and writes to it stay private.
  EXPECT_EQ(w.to_vector(), (std::vector<float>{1, 2, 3, 4}));
  w.data<float>()[0] = 9;
  EXPECT_EQ(w.to_vector(), (std::vector<float>{9, 2, 3, 4}));
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(SafetensorsFile::open(path).tensor("w").to_vector(), (std::vector<float>{1, 2, 3, 4}));
}

TEST(Safetensors, MisalignedTensorsAreCopied) {
  TempDir dir;
  const std::string path = dir.file("odd.safetensors");
  // Padding puts the data at an odd file offset, where nothing wider than a byte is aligned.
  std::string header = R"({"q":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
                       R"("f":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                       R"("u":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}})";
  while ((8 + header.size()) % 8 != 5) header += ' ';
  std::string data = le64(static_cast<uint64_t>(-42));
  const float floats[2] = {0.25f, -8.0f};
  data.append(reinterpret_cast<const char*>(floats), 8);
  data += std::string("\x01\x02\xff", 3);
  write_file(path, le64(header.size()) + header + data);

  const SafetensorsFile file = SafetensorsFile::open(path);
  const Tensor q = file.tensor("q");
  const Tensor f = file.tensor("f");
  const Tensor u = file.tensor("u");
  EXPECT_FALSE(aliases(file, q));
  EXPECT_FALSE(aliases(file, f));
  EXPECT_TRUE(aliases(file, u));  // bytes are always aligned
  EXPECT_EQ(q.data<int64_t>()[0], -42);
  EXPECT_EQ(f.to_vector(), (std::vector<float>{0.25f, -8.0f}));
  EXPECT_EQ(u.to_vector(), (std::vector<float>{1, 2, 255}));
  EXPECT_EQ(file.names(), (std::vector<std::string>{"q", "f", "u"}));
}

TEST(Safetensors, NamesFollowOffsetsThenHeaderOrder) {
  TempDir dir;
  const std::string path = dir.file("order.safetensors");
  write_file(path, file_bytes(R"({"m":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                              R"("z":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},)"
                              R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"I32","shape":[2,0],"data_offsets":[8,8]}})",
                              8));
  EXPECT_EQ(SafetensorsFile::open(path).names(), (std::vector<std::string>{"z", "a", "m", "b"}));
}

TEST(Safetensors, EmptyFileHasNoTensors) {
  TempDir dir;
  const std::string path = dir.file("none.safetensors");
  save_safetensors(path, {});
  const SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_TRUE(file.names().empty());
  EXPECT_TRUE(file.metadata().empty());
  EXPECT_EQ(read_file(path), le64(8) + "{}      ");
}

TEST(Safetensors, ReadsTheReferenceFixture) {
  const std::string path = NURI_SOURCE_DIR "/tests/data/reference.safetensors";
  const SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"a_i64", "b_f32", "c_empty", "c_i32", "d_bf16",
                                                    "e_f16", "f_u8"}));
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{
                                 {"format", "pt"}, {"source", "make_safetensors_fixture.py"}}));

  const Tensor a = file.tensor("a_i64");
  ASSERT_EQ(a.shape(), (Shape{3}));
  EXPECT_EQ(a.data<int64_t>()[0], -(int64_t{1} << 62) - 5);
  EXPECT_EQ(a.data<int64_t>()[1], 0);
  EXPECT_EQ(a.data<int64_t>()[2], (int64_t{1} << 53) + 1);

  const Tensor b = file.tensor("b_f32");
  EXPECT_EQ(b.shape(), (Shape{2, 3}));
  EXPECT_EQ(b.to_vector(), (std::vector<float>{0.5f, -1.25f, 3.0f, 1e-3f, -7.5e10f, 42.0f}));

  const Tensor empty = file.tensor("c_empty");
  EXPECT_EQ(empty.shape(), (Shape{0, 4}));
  EXPECT_EQ(empty.dtype(), DType::f32);

  const Tensor c = file.tensor("c_i32");
  EXPECT_EQ(c.shape(), Shape{});
  EXPECT_EQ(c.data<int32_t>()[0], -123456789);

  const Tensor d = file.tensor("d_bf16");
  EXPECT_EQ(d.shape(), (Shape{2, 3}));
  const std::vector<uint16_t> bf16_bits = {0x3f80, 0xc000, 0x3e20, 0x7f80, 0x0001, 0x8000};
  for (size_t i = 0; i < bf16_bits.size(); ++i) EXPECT_EQ(d.data<bf16_t>()[i].bits, bf16_bits[i]);
  const std::vector<float> d_values = d.to_vector();
  EXPECT_EQ(d_values[2], 0.15625f);
  EXPECT_TRUE(std::isinf(d_values[3]));

  const Tensor e = file.tensor("e_f16");
  EXPECT_EQ(e.shape(), (Shape{2, 2}));
  EXPECT_EQ(e.to_vector(),
            (std::vector<float>{1.0f, -0.333251953125f, 65504.0f, 5.960464477539063e-08f}));

  const Tensor f = file.tensor("f_u8");
  EXPECT_EQ(f.to_vector(), (std::vector<float>{0, 1, 127, 128, 255}));
  for (const std::string& name : file.names()) EXPECT_TRUE(aliases(file, file.tensor(name)));
}

TEST(Safetensors, SaveReplacesAnExistingFileAtomically) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  save_safetensors(path, {{"x", Tensor::from_vector({1, 2}, {2})}}, {{"version", "1"}});
  const SafetensorsFile old_file = SafetensorsFile::open(path);
  const Tensor old_x = old_file.tensor("x");

  save_safetensors(path, {{"x", Tensor::from_vector({3, 4, 5}, {3})}, {"y", Tensor::scalar(6)}},
                   {{"version", "2"}});
  // The old mapping still sees the old file: the new one replaced it, it was not rewritten.
  EXPECT_EQ(old_x.to_vector(), (std::vector<float>{1, 2}));
  EXPECT_EQ(old_file.metadata().at("version"), "1");
  const SafetensorsFile new_file = SafetensorsFile::open(path);
  EXPECT_EQ(new_file.metadata().at("version"), "2");
  EXPECT_EQ(new_file.tensor("x").to_vector(), (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(new_file.tensor("y").item(), 6.0f);
  EXPECT_EQ(dir.listing(), (std::vector<std::string>{"model.safetensors"}));
}

TEST(Safetensors, FailedSavesLeaveNoFiles) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  const Tensor t = Tensor::from_vector({1, 2}, {2});
  save_safetensors(path, {{"x", Tensor::scalar(1)}});
  const std::string original = read_file(path);

  const std::string missing_dir = dir.file("no/such/dir/model.safetensors");
  expect_error([&] { save_safetensors(missing_dir, {{"x", t}}); }, missing_dir, "creating");
  expect_error(
      [&] {
        save_safetensors(path, {{"x", t}, {"x", t}});
      },
      path, "duplicate tensor name 'x'");
  expect_error([&] { save_safetensors(path, {{"", t}}); }, path, "empty tensor name");
  expect_error([&] { save_safetensors(path, {{"__metadata__", t}}); }, path, "is reserved");
  expect_error(
      [&] {
        save_safetensors(path, {{"x", t}, {"y", Tensor()}});
      },
      path, "tensor 'y' is undefined");
  expect_error([&] { save_safetensors(path, {{"bad\xff", t}}); }, path, "is not valid UTF-8");
  expect_error(
      [&] {
        save_safetensors(path, {{"x", t}}, {{"k", "\xc0\x80"}});
      },
      path, "is not valid UTF-8");
  EXPECT_EQ(read_file(path), original);
  EXPECT_EQ(dir.listing(), (std::vector<std::string>{"model.safetensors"}));

  // A non-empty directory in the way: the data is written in full, then the rename fails.
  const std::string blocked = dir.file("blocked");
  fs::create_directories(blocked + "/inside");
  expect_error([&] { save_safetensors(blocked, {{"x", t}}); }, blocked, "renaming");
  EXPECT_EQ(dir.listing(), (std::vector<std::string>{"blocked", "model.safetensors"}));
  EXPECT_TRUE(fs::is_directory(blocked + "/inside"));
}

TEST(Safetensors, MissingTensorsAndFilesAreNamed) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  save_safetensors(path, {{"x", Tensor::scalar(1)}});
  const SafetensorsFile file = SafetensorsFile::open(path);
  expect_error([&] { file.entry("nope"); }, path, "no tensor named 'nope'");
  expect_error([&] { file.tensor("nope"); }, path, "no tensor named 'nope'");
  const std::string absent = dir.file("absent.safetensors");
  expect_error([&] { SafetensorsFile::open(absent); }, absent, "cannot open");
  const std::string directory = dir.file("a_directory");
  fs::create_directory(directory);
  expect_error([&] { SafetensorsFile::open(directory); }, directory, "not a regular file");
}

// A malformed file and the words its error must contain.
struct MalformedCase {
  std::string label;
  std::string bytes;
  std::string phrase;
};

// An entry with the given dtype, shape and offsets, as JSON text.
std::string entry_json(const std::string& dtype, const std::string& shape,
                       const std::string& offsets) {
  return R"({"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}";
}

std::vector<MalformedCase> malformed_cases() {
  const std::string f32x1 = entry_json("F32", "[1]", "[0,4]");
  return {
      {"shorter than 8 bytes", "\x01\x02\x03\x04\x05", "shorter than the 8-byte header length"},
      {"empty file", "", "shorter than the 8-byte header length"},
      {"header length 0", le64(0) + "{}", "header length is 0"},
      {"header over the limit", le64(100'000'001) + "{}", "exceeds the limit of 100000000 bytes"},
      {"header past the end", le64(64) + "{}      ", "runs past the end of the file"},
      {"header length near 2^64", le64(~uint64_t{0}) + "{}", "exceeds the limit"},
      {"invalid UTF-8 byte", file_bytes("{\"a\xff\":" + f32x1 + "}", 4), "not valid UTF-8"},
      {"overlong UTF-8", file_bytes("{\"a\xc0\xaf\":" + f32x1 + "}", 4), "not valid UTF-8"},
      {"UTF-8 surrogate", file_bytes("{\"a\xed\xa0\x80\":" + f32x1 + "}", 4), "not valid UTF-8"},
      {"truncated UTF-8", file_bytes("{\"a\":" + f32x1 + "}\xe2\x82", 4), "not valid UTF-8"},
      {"not JSON", file_bytes(R"({"a":)", 0), "header is not valid JSON"},
      {"JSON escape of a lone surrogate", file_bytes(R"({"\ud800":1})", 0),
       "header is not valid JSON"},
      {"JSON array", file_bytes("[1,2]", 0), "header is not a JSON object"},
      {"JSON string", file_bytes(R"("x")", 0), "header is not a JSON object"},
      {"entry not an object", file_bytes(R"({"a":[1]})", 0), "tensor 'a': entry is not an object"},
      {"deeply nested entry",
       file_bytes(R"({"a":)" + std::string(100000, '[') + std::string(100000, ']') + "}", 0),
       "tensor 'a': entry is not an object"},
      {"missing key", file_bytes(R"({"a":{"dtype":"F32","shape":[1]}})", 4),
       "tensor 'a': missing key 'data_offsets'"},
      {"extra key",
       file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"strides":[1]}})", 4),
       "tensor 'a': unexpected key 'strides'"},
      {"dtype not a string", file_bytes(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4),
       "dtype is not a string"},
      {"negative extent", file_bytes(R"({"a":)" + entry_json("F32", "[-1]", "[0,4]") + "}", 4),
       "shape is not an array of non-negative integers"},
      {"fractional extent", file_bytes(R"({"a":)" + entry_json("F32", "[1.0]", "[0,4]") + "}", 4),
       "shape is not an array of non-negative integers"},
      {"shape not an array", file_bytes(R"({"a":)" + entry_json("F32", "4", "[0,4]") + "}", 4),
       "shape is not an array of non-negative integers"},
      {"three offsets", file_bytes(R"({"a":)" + entry_json("F32", "[1]", "[0,4,4]") + "}", 4),
       "is not an array of two non-negative integers"},
      {"negative offset", file_bytes(R"({"a":)" + entry_json("F32", "[1]", "[-4,0]") + "}", 4),
       "is not an array of two non-negative integers"},
      {"offsets not an array", file_bytes(R"({"a":)" + entry_json("F32", "[1]", "{}") + "}", 4),
       "is not an array of two non-negative integers"},
      {"offset past 2^64",
       file_bytes(R"({"a":)" + entry_json("F32", "[1]", "[0,18446744073709551616]") + "}", 4),
       "is not an array of two non-negative integers"},
      {"begin after end", file_bytes(R"({"a":)" + entry_json("U8", "[0]", "[4,0]") + "}", 4),
       "data_offsets [4,0] begins after it ends"},
      {"element count overflow",
       file_bytes(R"({"a":)" + entry_json("U8", "[4294967296,4294967296]", "[0,0]") + "}", 0),
       "has too many elements"},
      {"byte count overflow",
       file_bytes(R"({"a":)" + entry_json("F32", "[4611686018427387904]", "[0,0]") + "}", 0),
       "has too many elements"},
      {"extent past int64",
       file_bytes(R"({"a":)" + entry_json("U8", "[0,18446744073709551615]", "[0,0]") + "}", 0),
       "has too many elements"},
      {"size mismatch", file_bytes(R"({"a":)" + entry_json("F32", "[3]", "[0,8]") + "}", 8),
       "span 8 bytes but F32 [3] needs 12"},
      {"data not starting at 0",
       file_bytes(R"({"a":)" + entry_json("F32", "[1]", "[4,8]") + "}", 8),
       "the first tensor 'a' begins at byte 4, not 0"},
      {"overlapping tensors",
       file_bytes(R"({"a":)" + entry_json("F32", "[2]", "[0,8]") + R"(,"b":)" +
                      entry_json("F32", "[2]", "[4,12]") + "}",
                  12),
       "tensor 'b' [4, 12) overlaps tensor 'a' [0, 8)"},
      {"duplicated range",
       file_bytes(R"({"a":)" + entry_json("F32", "[1]", "[0,4]") + R"(,"b":)" +
                      entry_json("I32", "[1]", "[0,4]") + "}",
                  4),
       "overlaps tensor 'a'"},
      {"gap between tensors",
       file_bytes(R"({"a":)" + entry_json("F32", "[1]", "[0,4]") + R"(,"b":)" +
                      entry_json("F32", "[1]", "[8,12]") + "}",
                  12),
       "gap of 4 bytes between tensor 'a'"},
      {"trailing bytes", file_bytes(R"({"a":)" + f32x1 + "}", 8),
       "4 trailing bytes after the last tensor"},
      {"data without tensors", file_bytes("{}", 3), "3 trailing bytes"},
      {"truncated data", file_bytes(R"({"a":)" + entry_json("F32", "[2]", "[0,8]") + "}", 5),
       "file is truncated: the tensors need 8 bytes of data but 5 follow the header"},
      {"metadata not an object", file_bytes(R"({"__metadata__":["x"]})", 0),
       "__metadata__ is not an object"},
      {"metadata value not a string", file_bytes(R"({"__metadata__":{"k":"v","n":1}})", 0),
       "__metadata__ value for 'n' is not a string"},
      {"duplicate tensor", file_bytes(R"({"a":)" + f32x1 + R"(,"a":)" + f32x1 + "}", 4),
       "duplicate key 'a' in the header"},
      {"duplicate key in an entry",
       file_bytes(R"({"a":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}})", 4),
       "duplicate key 'dtype' in the header"},
      {"duplicate metadata key", file_bytes(R"({"__metadata__":{"k":"1","k":"2"}})", 0),
       "duplicate key 'k' in the header"},
      {"empty tensor name", file_bytes(R"({"":)" + f32x1 + "}", 4), "empty tensor name"},
      {"unsupported F64", file_bytes(R"({"a":)" + entry_json("F64", "[1]", "[0,8]") + "}", 8),
       "tensor 'a': unsupported dtype F64"},
      {"unsupported BOOL", file_bytes(R"({"a":)" + entry_json("BOOL", "[1]", "[0,1]") + "}", 1),
       "tensor 'a': unsupported dtype BOOL"},
      {"unsupported F8_E4M3",
       file_bytes(R"({"a":)" + entry_json("F8_E4M3", "[1]", "[0,1]") + "}", 1),
       "tensor 'a': unsupported dtype F8_E4M3"},
      {"unknown dtype", file_bytes(R"({"a":)" + entry_json("f32", "[1]", "[0,4]") + "}", 4),
       "tensor 'a': unknown dtype f32"},
  };
}

TEST(Safetensors, RejectsMalformedFiles) {
  const std::vector<MalformedCase> cases = malformed_cases();
  ASSERT_GE(cases.size(), 15u);
  for (const MalformedCase& c : cases) {
    SCOPED_TRACE(c.label);
    TempDir dir;
    const std::string path = dir.file("malformed.safetensors");
    write_file(path, c.bytes);
    expect_error([&] { SafetensorsFile::open(path); }, path, c.phrase);
  }
}

}  // namespace
}  // namespace nuri
