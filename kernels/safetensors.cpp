#include "kernels/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>

#include "kernels/file_io.h"

namespace nuri {

// Tensor bytes go to and from files unchanged, and safetensors is little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes little-endian");

namespace {

// Objects keep their keys sorted (std::map): lookups stay logarithmic in headers with many tensors.
using Json = nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";

// Safetensors dtype names of the dtypes nuri stores.
std::string_view safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "F32";
    case DType::bf16:
      return "BF16";
    case DType::f16:
      return "F16";
    case DType::i32:
      return "I32";
    case DType::i64:
      return "I64";
    case DType::u8:
      return "U8";
  }
  fail("safetensors: unhandled dtype ", static_cast<int>(dtype));
}

// The DType for a safetensors dtype name, or nullopt when nuri has none.
std::optional<DType> parse_safetensors_dtype(std::string_view name) {
  for (DType dtype : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8}) {
    if (safetensors_dtype_name(dtype) == name) return dtype;
  }
  return std::nullopt;
}

// Dtypes the format defines but nuri cannot hold.
bool is_known_unsupported_dtype(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "F64", "I8",      "I16",     "U16",     "U32",     "U64",    "BOOL",
      "F4",  "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

// Byte offset of the first malformed UTF-8 sequence in `text` (overlong forms, surrogates and
// code points past U+10FFFF are malformed), or nullopt when the text is valid.
std::optional<size_t> find_invalid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    uint32_t code;
    uint32_t smallest;
    if ((lead & 0xe0) == 0xc0) {
      length = 2, code = lead & 0x1f, smallest = 0x80;
    } else if ((lead & 0xf0) == 0xe0) {
      length = 3, code = lead & 0x0f, smallest = 0x800;
    } else if ((lead & 0xf8) == 0xf0) {
      length = 4, code = lead & 0x07, smallest = 0x10000;
    } else {
      return i;
    }
    if (text.size() - i < length) return i;
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return i;
      code = (code << 6) | (next & 0x3f);
    }
    if (code < smallest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return i;
    i += length;
  }
  return std::nullopt;
}

// The value of a JSON integer that is non-negative, or nullopt for anything else.
std::optional<uint64_t> non_negative_integer(const Json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return std::nullopt;
}

// A SAX pass over the header that records the top-level keys in order and the first key repeated
// within one object, which a DOM parse would silently merge. (nlohmann's parser callbacks could do
// this during the DOM parse, but they rescan the parent object after each child: quadratic time.)
class KeyScanner : public nlohmann::json_sax<Json> {
 public:
  std::vector<std::string> top_level_keys;
  std::optional<std::string> duplicate;
  std::string error;  // the parse error, if any

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    open_.emplace_back();
    return true;
  }
  bool key(string_t& key) override {
    if (open_.size() == 1) top_level_keys.push_back(key);
    if (!open_.back().insert(key).second && !duplicate) duplicate = key;
    return true;
  }
  bool end_object() override {
    open_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    open_.emplace_back();  // arrays have no keys; the empty set keeps the depth
    return true;
  }
  bool end_array() override {
    open_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = e.what();
    return false;
  }

 private:
  std::vector<std::set<std::string>> open_;  // keys seen in each open container
};

// A parsed header and its top-level keys in the order they appear (the object sorts them).
struct Header {
  Json json;
  std::vector<std::string> keys;
};

Header parse_header(const std::string& path, std::string_view text) {
  KeyScanner scanner;
  const bool parsed = Json::sax_parse(text.begin(), text.end(), &scanner);
  NURI_CHECK(parsed && scanner.error.empty(), path, ": header is not valid JSON: ", scanner.error);
  NURI_CHECK(!scanner.duplicate, path, ": duplicate key '", *scanner.duplicate, "' in the header");
  Header header;
  header.keys = std::move(scanner.top_level_keys);
  try {
    header.json = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    fail(path, ": header is not valid JSON: ", e.what());
  }
  return header;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const Json& value) {
  NURI_CHECK(value.is_object(), path, ": __metadata__ is not an object");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    NURI_CHECK(item.is_string(), path, ": __metadata__ value for '", key, "' is not a string");
    metadata.emplace(key, item.get<std::string>());
  }
  return metadata;
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name, const Json& value) {
  const std::string where = cat(path, ": tensor '", name, "': ");
  NURI_CHECK(value.is_object(), where, "entry is not an object");
  static constexpr std::string_view kKeys[] = {"dtype", "shape", "data_offsets"};
  for (const auto& [key, item] : value.items()) {
    NURI_CHECK(std::find(std::begin(kKeys), std::end(kKeys), key) != std::end(kKeys), where,
               "unexpected key '", key, "'");
  }
  for (std::string_view key : kKeys) {
    NURI_CHECK(value.contains(key), where, "missing key '", key, "'");
  }

  SafetensorsEntry entry;
  entry.name = name;
  const Json& dtype = value.at("dtype");
  NURI_CHECK(dtype.is_string(), where, "dtype is not a string");
  const auto& dtype_text = dtype.get_ref<const std::string&>();
  const std::optional<DType> parsed = parse_safetensors_dtype(dtype_text);
  if (!parsed) {
    NURI_CHECK(!is_known_unsupported_dtype(dtype_text), where, "unsupported dtype ", dtype_text);
    fail(where, "unknown dtype ", dtype_text);
  }
  entry.dtype = *parsed;

  const Json& shape = value.at("shape");
  NURI_CHECK(shape.is_array(), where, "shape is not an array of non-negative integers");
  uint64_t numel = 1;
  for (const Json& extent_json : shape) {
    const std::optional<uint64_t> extent = non_negative_integer(extent_json);
    NURI_CHECK(extent, where, "shape is not an array of non-negative integers");
    NURI_CHECK(*extent <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
                   !__builtin_mul_overflow(numel, *extent, &numel),
               where, "shape ", shape.dump(), " has too many elements");
    entry.shape.push_back(static_cast<int64_t>(*extent));
  }
  uint64_t bytes;
  NURI_CHECK(numel <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
                 !__builtin_mul_overflow(numel, dtype_size(entry.dtype), &bytes),
             where, "shape ", shape.dump(), " has too many elements");

  const Json& offsets = value.at("data_offsets");
  std::optional<uint64_t> begin, end;
  if (offsets.is_array() && offsets.size() == 2) {
    begin = non_negative_integer(offsets[0]);
    end = non_negative_integer(offsets[1]);
  }
  NURI_CHECK(begin && end, where, "data_offsets ", offsets.dump(),
             " is not an array of two non-negative integers");
  NURI_CHECK(*begin <= *end, where, "data_offsets ", offsets.dump(), " begins after it ends");
  entry.begin = *begin;
  entry.end = *end;
  NURI_CHECK(*end - *begin == bytes, where, "data_offsets ", offsets.dump(), " span ",
             *end - *begin, " bytes but ", dtype_text, " ", shape_str(entry.shape), " needs ",
             bytes);
  return entry;
}

// Fails unless the entries, ordered by offset, tile the data buffer exactly.
void check_layout(const std::string& path, const std::vector<SafetensorsEntry>& entries,
                  uint64_t buffer_bytes) {
  uint64_t expected = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const SafetensorsEntry& e = entries[i];
    if (i == 0) {
      NURI_CHECK(e.begin == 0, path, ": the first tensor '", e.name, "' begins at byte ", e.begin,
                 ", not 0");
    } else {
      const SafetensorsEntry& previous = entries[i - 1];
      NURI_CHECK(e.begin >= expected, path, ": tensor '", e.name, "' [", e.begin, ", ", e.end,
                 ") overlaps tensor '", previous.name, "' [", previous.begin, ", ", previous.end,
                 ")");
      NURI_CHECK(e.begin == expected, path, ": gap of ", e.begin - expected,
                 " bytes between tensor '", previous.name, "' (ends at ", expected,
                 ") and tensor '", e.name, "' (begins at ", e.begin, ")");
    }
    expected = e.end;
  }
  NURI_CHECK(expected <= buffer_bytes, path, ": file is truncated: the tensors need ", expected,
             " bytes of data but ", buffer_bytes, " follow the header");
  NURI_CHECK(expected == buffer_bytes, path, ": ", buffer_bytes - expected,
             " trailing bytes after the last tensor");
}

}  // namespace

struct SafetensorsFile::Mapping {
  std::byte* data = nullptr;
  size_t size = 0;
  Mapping(std::byte* data, size_t size) : data(data), size(size) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { ::munmap(data, size); }
};

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  NURI_CHECK(fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(error));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  const auto file_bytes = static_cast<uint64_t>(info.st_size);
  if (file_bytes < 8) {
    ::close(fd);
    fail(path, ": file is ", file_bytes, " bytes, shorter than the 8-byte header length");
  }
  // Private and writable: tensors that alias the mapping may be modified in place without
  // faulting, and their writes never reach the file.
  void* address = ::mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int map_error = errno;
  ::close(fd);
  NURI_CHECK(address != MAP_FAILED, path, ": cannot map ", file_bytes,
             " bytes: ", std::strerror(map_error));

  SafetensorsFile file;
  file.path_ = path;
  file.mapping_ = std::make_shared<Mapping>(static_cast<std::byte*>(address), file_bytes);
  const std::byte* bytes = file.mapping_->data;

  uint64_t header_bytes;
  std::memcpy(&header_bytes, bytes, 8);
  NURI_CHECK(header_bytes != 0, path, ": header length is 0");
  NURI_CHECK(header_bytes <= kSafetensorsMaxHeaderBytes, path, ": header length ", header_bytes,
             " exceeds the limit of ", kSafetensorsMaxHeaderBytes, " bytes");
  NURI_CHECK(header_bytes <= file_bytes - 8, path, ": header length ", header_bytes,
             " runs past the end of the file (", file_bytes, " bytes)");
  const std::string_view text(reinterpret_cast<const char*>(bytes + 8), header_bytes);
  const std::optional<size_t> bad_byte = find_invalid_utf8(text);
  NURI_CHECK(!bad_byte, path, ": header is not valid UTF-8 (at header byte ", bad_byte.value_or(0),
             ")");

  const Header header = parse_header(path, text);
  NURI_CHECK(header.json.is_object(), path, ": header is not a JSON object");
  // Header position of each entry, so that tensors at equal offsets keep the header's order.
  std::vector<std::pair<SafetensorsEntry, size_t>> parsed;
  for (const std::string& name : header.keys) {
    const Json& value = header.json.at(name);
    if (name == kMetadataKey) {
      file.metadata_ = parse_metadata(path, value);
      continue;
    }
    NURI_CHECK(!name.empty(), path, ": empty tensor name in the header");
    parsed.emplace_back(parse_entry(path, name, value), parsed.size());
  }
  std::sort(parsed.begin(), parsed.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first.begin, a.first.end, a.second) <
           std::tie(b.first.begin, b.first.end, b.second);
  });
  for (auto& [entry, position] : parsed) file.entries_.push_back(std::move(entry));
  file.data_start_ = 8 + header_bytes;
  check_layout(path, file.entries_, file_bytes - file.data_start_);
  for (size_t i = 0; i < file.entries_.size(); ++i) file.index_.emplace(file.entries_[i].name, i);
  return file;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const SafetensorsEntry& e : entries_) out.push_back(e.name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const {
  return index_.count(name) != 0;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  const auto found = index_.find(name);
  NURI_CHECK(found != index_.end(), path_, ": no tensor named '", name, "'");
  return entries_[found->second];
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  std::byte* data = mapping_->data + data_start_ + e.begin;
  const size_t bytes = e.end - e.begin;
  if (reinterpret_cast<uintptr_t>(data) % dtype_size(e.dtype) == 0) {
    return Tensor::from_storage(Storage::wrap(data, bytes, Device::cpu(), mapping_), 0, e.shape,
                                e.dtype);
  }
  Tensor copy = Tensor::empty(e.shape, e.dtype);
  if (bytes > 0) std::memcpy(copy.raw_data(), data, bytes);
  return copy;
}

std::span<const std::byte> SafetensorsFile::mapped_bytes() const {
  return {mapping_->data, mapping_->size};
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::set<std::string_view> seen;
  for (const auto& [name, tensor] : tensors) {
    NURI_CHECK(!name.empty(), path, ": empty tensor name");
    NURI_CHECK(name != kMetadataKey, path, ": the tensor name ", kMetadataKey, " is reserved");
    NURI_CHECK(!find_invalid_utf8(name), path, ": tensor name '", name, "' is not valid UTF-8");
    NURI_CHECK(seen.insert(name).second, path, ": duplicate tensor name '", name, "'");
    NURI_CHECK(tensor.defined(), path, ": tensor '", name, "' is undefined");
  }
  for (const auto& [key, value] : metadata) {
    NURI_CHECK(!find_invalid_utf8(key) && !find_invalid_utf8(value), path, ": metadata entry '",
               key, "' is not valid UTF-8");
  }

  // Largest elements first: with an 8-byte-aligned buffer every tensor is aligned for its dtype.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].second.dtype()) > dtype_size(tensors[b].second.dtype());
  });

  // The header is assembled entry by entry, in data order, with "__metadata__" first.
  std::string text = "{";
  const auto add_entry = [&text](const std::string& key, const std::string& value) {
    if (text.size() > 1) text += ',';
    text += Json(key).dump();
    text += ':';
    text += value;
  };
  if (!metadata.empty()) add_entry(std::string(kMetadataKey), Json(metadata).dump());
  uint64_t offset = 0;
  for (size_t i : order) {
    const auto& [name, tensor] = tensors[i];
    const uint64_t end = offset + tensor.nbytes();
    add_entry(name, nlohmann::ordered_json{{"dtype", safetensors_dtype_name(tensor.dtype())},
                                           {"shape", tensor.shape()},
                                           {"data_offsets", {offset, end}}}
                        .dump());
    offset = end;
  }
  text += '}';
  text.append((8 - text.size() % 8) % 8, ' ');
  NURI_CHECK(text.size() <= kSafetensorsMaxHeaderBytes, path, ": header of ", text.size(),
             " bytes exceeds the limit of ", kSafetensorsMaxHeaderBytes, " bytes");

  AtomicFile file(path);
  uint64_t header_bytes = text.size();
  file.write(&header_bytes, 8);
  file.write(text);
  for (size_t i : order) {
    const Tensor& tensor = tensors[i].second;
    const Tensor host = tensor.device().is_cpu() ? tensor : tensor.to(Device::cpu());
    file.write(host.raw_data(), host.nbytes());
  }
  file.commit();
}

}  // namespace nuri
