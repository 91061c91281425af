// LeakSanitizer suppressions of the media tests (read by LSan at exit in sanitizer builds).
// libsndfile 1.2.0 does not free its libvorbis header state when it refuses a malformed ogg
// (5.7 KB per refused file, inside the library); BadInput.OggVorbisTruncated triggers it.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:vorbis_info_init\n";
}
