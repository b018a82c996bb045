#include "report_files.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "hgrm.hpp"
#include "moirai/core/error.hpp"
#include "svg_plot.hpp"

namespace moirai::cli {
namespace {

namespace fs = std::filesystem;

// FILE without `extension` when it ends with it: "out/lat.hgrm" -> "out/lat".
std::string stem_of(const std::string& file, std::string_view extension) {
  if (file.size() > extension.size() &&
      file.compare(file.size() - extension.size(), extension.size(), extension) == 0)
    return file.substr(0, file.size() - extension.size());
  return file;
}

std::string hgrm_comment(const BenchReport& r, const BenchRow& row) {
  return "moirai bench " + r.bench + ", row " + row.name + ": values in " + r.unit + " (unscaled)";
}

}  // namespace

void write_file(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (out) out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (out) out.close();
  if (!out) {
    const int err = errno;
    throw Error(Errc::invalid_argument, "cannot write '" + path + "': " + std::strerror(err));
  }
}

std::vector<std::string> write_hgrm_files(const std::string& file, const std::vector<BenchReport>& reports) {
  const std::string stem = stem_of(file, ".hgrm");
  std::vector<std::string> written;
  for (const BenchReport& r : reports) {
    for (const BenchRow& row : r.rows) {
      if (!has_latency_distribution(row)) continue;
      const std::string path = stem + "." + (reports.size() > 1 ? r.bench + "." : "") + row.name + ".hgrm";
      write_file(path, hgrm_text(row.distribution, hgrm_comment(r, row)));
      written.push_back(path);
    }
  }
  return written;
}

std::vector<std::string> write_plots(const std::string& file, const std::vector<BenchReport>& reports) {
  std::vector<std::string> written;
  for (const BenchReport& r : reports) {
    const std::string path = reports.size() > 1 ? stem_of(file, ".svg") + "." + r.bench + ".svg" : file;
    write_file(path, percentile_plot_svg(r));
    written.push_back(path);
  }
  return written;
}

std::string summary_markdown(const std::vector<BenchReport>& reports) {
  std::string md =
      "# moirai bench\n\nEach bench's rows, with each Moirai row's ratio to the baseline measured in the "
      "same "
      "run: absolute times drift between machines and between hours on a shared one, the ratios much less. "
      "`all.json` is every report, usable as `moirai bench --baseline all.json`.\n";
  for (const BenchReport& r : reports) {
    md += "\n## " + r.bench + "\n\n[plot](" + r.bench + ".svg) · [JSON](" + r.bench + ".json)";
    bool first = true;
    for (const BenchRow& row : r.rows) {
      if (!has_latency_distribution(row)) continue;
      md += (first ? " · HdrHistogram: " : ", ");
      md += "[" + row.name + "](" + r.bench + "." + row.name + ".hgrm)";
      first = false;
    }
    md += "\n\n![" + r.bench + ": latency by percentile](" + r.bench + ".svg)\n\n";
    md += "| row | p50 (" + r.unit + ") | p99 (" + r.unit +
          ") | p50/base | p99/base |\n|---|---:|---:|---:|---:|\n";
    for (const BenchRow& row : r.rows) {
      const auto ratios = ratios_to_baseline(row, baseline_for(r, row));
      md += "| " + row.name + " | " + std::to_string(row.p50) + " | " + std::to_string(row.p99) + " | " +
            (ratios ? format_ratio(ratios->p50) : "") + " | " + (ratios ? format_ratio(ratios->p99) : "") +
            " |\n";
    }
    if (!r.note.empty()) md += "\n" + r.note + "\n";
  }
  return md;
}

std::vector<std::string> write_report_dir(const std::string& dir, const std::vector<BenchReport>& reports) {
  std::vector<std::string> written;
  const auto in_dir = [&](const std::string& name) { return (fs::path(dir) / name).string(); };
  for (const BenchReport& r : reports) {
    write_file(in_dir(r.bench + ".json"), to_json(r) + "\n");
    written.push_back(in_dir(r.bench + ".json"));
    for (std::string& p : write_plots(in_dir(r.bench + ".svg"), {r}))
      written.push_back(std::move(p));
    for (std::string& p : write_hgrm_files(in_dir(r.bench + ".hgrm"), {r}))
      written.push_back(std::move(p));
  }
  write_file(in_dir("all.json"), to_json(reports) + "\n");
  written.push_back(in_dir("all.json"));
  write_file(in_dir("summary.md"), summary_markdown(reports));
  written.push_back(in_dir("summary.md"));
  return written;
}

void prepare_outputs(const ReportOutputs& o) {
  for (const std::string& file : {o.hgrm, o.plot}) {
    if (file.empty()) continue;
    const fs::path parent = fs::path(file).parent_path();
    std::error_code ec;
    if (!parent.empty() && !fs::is_directory(parent, ec))
      throw Error(Errc::invalid_argument,
                  "cannot write '" + file + "': no directory '" + parent.string() + "' (create it first)");
  }
  if (o.report_dir.empty()) return;
  std::error_code ec;
  fs::create_directories(o.report_dir, ec);
  if (!ec && !fs::is_directory(o.report_dir, ec)) ec = std::make_error_code(std::errc::not_a_directory);
  if (ec)
    throw Error(Errc::invalid_argument,
                "cannot create report directory '" + o.report_dir + "': " + ec.message());
}

void write_outputs(const ReportOutputs& o, const std::vector<BenchReport>& reports, std::ostream& log) {
  std::vector<std::string> written;
  if (!o.hgrm.empty()) written = write_hgrm_files(o.hgrm, reports);
  if (!o.plot.empty())
    for (std::string& p : write_plots(o.plot, reports))
      written.push_back(std::move(p));
  for (const std::string& p : written)
    log << "moirai: wrote " << p << '\n';
  if (!o.report_dir.empty()) {
    const std::vector<std::string> files = write_report_dir(o.report_dir, reports);
    log << "moirai: wrote " << files.size() << " files in " << o.report_dir << " (see "
        << (fs::path(o.report_dir) / "summary.md").string() << ")\n";
  }
}

}  // namespace moirai::cli
