// A strict reader of the Prometheus text exposition format (0.0.4) for tests: every sample line parsed into
// name, labels and value, every family's TYPE checked, histogram series checked for cumulative buckets that
// end in +Inf equal to _count. Throws std::runtime_error naming the line on anything malformed.
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace moirai_test {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromExposition {
  std::map<std::string, std::string> types;  // family -> counter|gauge|histogram|summary|untyped
  std::vector<PromSample> samples;

  // The value of `name` with exactly these labels; throws if absent.
  double value(const std::string& name, const std::map<std::string, std::string>& labels) const {
    for (const PromSample& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    throw std::runtime_error("no sample " + name);
  }
  std::vector<const PromSample*> series(const std::string& name) const {
    std::vector<const PromSample*> out;
    for (const PromSample& s : samples) {
      if (s.name == name) out.push_back(&s);
    }
    return out;
  }
};

inline bool prom_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

// The family a sample belongs to: histogram samples carry _bucket, _sum or _count after the family's name.
inline std::string prom_family(const PromExposition& e, const std::string& name) {
  if (e.types.count(name) != 0) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      if (e.types.count(base) != 0) return base;
    }
  }
  return {};
}

inline PromExposition parse_prometheus(const std::string& text) {
  PromExposition e;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  auto fail = [&](const std::string& why) {
    throw std::runtime_error("line " + std::to_string(n) + ": " + why + ": " + line);
  };
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream c(line);
      std::string hash, kind, family, type;
      c >> hash >> kind >> family;
      if (kind == "TYPE") {
        c >> type;
        if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
            type != "untyped")
          fail("unknown type");
        if (e.types.count(family) != 0) fail("TYPE given twice");
        e.types[family] = type;
      }
      continue;
    }
    PromSample s;
    std::size_t i = 0;
    while (i < line.size() && prom_name_char(line[i], i == 0))
      ++i;
    if (i == 0) fail("no metric name");
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const std::size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') fail("bad label");
        const std::string key = line.substr(i, eq - i);
        std::size_t end = eq + 2;
        std::string val;
        while (end < line.size() && line[end] != '"') {
          if (line[end] == '\\' && end + 1 < line.size()) ++end;
          val += line[end++];
        }
        if (end >= line.size()) fail("unterminated label value");
        s.labels[key] = val;
        i = end + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) fail("unterminated labels");
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') fail("no space before the value");
    const std::string v = line.substr(i + 1);
    char* endp = nullptr;
    s.value = v == "+Inf" ? INFINITY : std::strtod(v.c_str(), &endp);
    if (v != "+Inf" && (endp == v.c_str() || *endp != '\0')) fail("bad value");
    if (prom_family(e, s.name).empty()) fail("sample before its TYPE");
    e.samples.push_back(std::move(s));
  }
  // Histograms: per label set (without le), buckets non-decreasing in le and +Inf == _count.
  for (const auto& [family, type] : e.types) {
    if (type != "histogram") continue;
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
    for (const PromSample* b : e.series(family + "_bucket")) {
      auto labels = b->labels;
      const auto le = labels.find("le");
      if (le == labels.end()) throw std::runtime_error(family + "_bucket without le");
      const double bound = le->second == "+Inf" ? INFINITY : std::strtod(le->second.c_str(), nullptr);
      labels.erase(le);
      buckets[labels].push_back({bound, b->value});
    }
    for (const auto& [labels, bs] : buckets) {
      for (std::size_t k = 1; k < bs.size(); ++k) {
        if (!(bs[k].first > bs[k - 1].first) || bs[k].second < bs[k - 1].second)
          throw std::runtime_error(family + ": buckets not cumulative");
      }
      if (bs.empty() || !std::isinf(bs.back().first)) throw std::runtime_error(family + ": no +Inf bucket");
      if (bs.back().second != e.value(family + "_count", labels))
        throw std::runtime_error(family + ": +Inf bucket != _count");
      e.value(family + "_sum", labels);  // must exist
    }
  }
  return e;
}

}  // namespace moirai_test
