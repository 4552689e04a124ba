#include "tune/svg_plot.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace mf {

namespace {
constexpr int kLeft = 78, kRight = 20, kTop = 40, kBottom = 56, kLegendRow = 16;
}

std::string si_number(double v, int digits) {
    if (v == 0 || !std::isfinite(v)) return "0";
    static const char* suffix[] = {"p", "n", "µ", "m", "", "k", "M", "G", "T", "P"};
    int e = int(std::floor(std::log10(std::fabs(v)) / 3));
    e = std::clamp(e, -4, 5);
    const double m = v / std::pow(1000.0, e);
    std::string s = fmt::format("{:.{}g}", m, digits);
    const char* suf = suffix[e + 4];
    return *suf ? s + " " + suf : s;
}

std::string xml_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '&': o += "&amp;"; break;
            case '<': o += "&lt;"; break;
            case '>': o += "&gt;"; break;
            case '"': o += "&quot;"; break;
            default: o += c;
        }
    }
    return o;
}

std::string SvgPlot::palette(int i) {
    static const char* c[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                              "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};
    return c[((i % 10) + 10) % 10];
}

SvgPlot::SvgPlot(std::string title, std::string x_label, std::string y_label, int width, int height)
    : title_(std::move(title)), x_label_(std::move(x_label)), y_label_(std::move(y_label)), w_(width), h_(height) {}

void SvgPlot::x_axis(double lo, double hi, bool log) {
    x0_ = lo;
    x1_ = hi > lo ? hi : lo + 1;
    xlog_ = log && lo > 0;
}

void SvgPlot::y_axis(double lo, double hi, bool log) {
    y0_ = lo;
    y1_ = hi > lo ? hi : lo + 1;
    ylog_ = log && lo > 0;
}

double SvgPlot::px(double x) const {
    const double f = xlog_ ? (std::log10(std::max(x, 1e-300)) - std::log10(x0_)) / (std::log10(x1_) - std::log10(x0_))
                           : (x - x0_) / (x1_ - x0_);
    return kLeft + f * (w_ - kLeft - kRight);
}

double SvgPlot::py(double y) const {
    const double f = ylog_ ? (std::log10(std::max(y, 1e-300)) - std::log10(y0_)) / (std::log10(y1_) - std::log10(y0_))
                           : (y - y0_) / (y1_ - y0_);
    return h_ - kBottom - f * (h_ - kTop - kBottom);
}

void SvgPlot::line(const std::vector<SvgPoint>& pts, const std::string& color, const std::string& name, bool dashed,
                   double width) {
    if (pts.empty()) return;
    std::string d;
    for (const auto& p : pts) d += fmt::format("{:.1f},{:.1f} ", px(p.x), py(p.y));
    body_ += fmt::format(R"svg(<polyline points="{}" fill="none" stroke="{}" stroke-width="{}"{} clip-path="url(#plot)"/>)svg",
                         d, color, width, dashed ? R"svg( stroke-dasharray="6,4")svg" : "");
    body_ += '\n';
    if (!name.empty()) {
        legend_.emplace_back(name, color);
        legend_dashed_.push_back(dashed);
    }
}

void SvgPlot::point(SvgPoint p, const std::string& color, const std::string& label, bool filled) {
    body_ += fmt::format(R"svg(<circle cx="{:.1f}" cy="{:.1f}" r="5" fill="{}" stroke="{}" stroke-width="1.5"/>)svg",
                         px(p.x), py(p.y), filled ? color : "white", color);
    if (!label.empty())
        body_ += fmt::format(R"svg(<text x="{:.1f}" y="{:.1f}" font-size="11" fill="{}">{}</text>)svg", px(p.x) + 7,
                             py(p.y) - 6, color, xml_escape(label));
    body_ += '\n';
}

void SvgPlot::note(SvgPoint p, const std::string& text, const std::string& color, const std::string& anchor) {
    body_ += fmt::format(R"svg(<text x="{:.1f}" y="{:.1f}" font-size="11" fill="{}" text-anchor="{}">{}</text>)svg",
                         std::min(px(p.x), double(w_ - kRight - 4)), py(p.y), color, anchor, xml_escape(text));
    body_ += '\n';
}

std::string SvgPlot::render() const {
    const int legend_h = int(legend_.size() + 1) / 2 * kLegendRow;
    const int H = h_ + legend_h;
    std::string s = fmt::format(
        R"svg(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" font-family="Helvetica, Arial, sans-serif">)svg"
        "\n",
        w_, H, w_, H);
    s += fmt::format(R"svg(<rect width="{}" height="{}" fill="white"/>)svg", w_, H);
    s += fmt::format(R"svg(<defs><clipPath id="plot"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath></defs>)svg", kLeft,
                     kTop, w_ - kLeft - kRight, h_ - kTop - kBottom);
    s += '\n';
    s += fmt::format(R"svg(<text x="{}" y="22" font-size="15" font-weight="bold" text-anchor="middle">{}</text>)svg", w_ / 2,
                     xml_escape(title_));
    s += '\n';
    // Ticks and grid; plain numbers in [0.01, 1000), engineering notation outside.
    auto label = [](double v) {
        return std::fabs(v) >= 0.01 && std::fabs(v) < 1000 ? fmt::format("{:g}", v) : si_number(v);
    };
    auto ticks = [](double lo, double hi, bool log) {
        std::vector<double> t;
        if (log) {
            for (double e = std::floor(std::log10(lo)); e <= std::ceil(std::log10(hi)); e += 1) {
                const double v = std::pow(10.0, e);
                if (v >= lo * 0.999 && v <= hi * 1.001) t.push_back(v);
            }
            if (t.size() < 3)
                for (double e = std::floor(std::log10(lo)); e <= std::ceil(std::log10(hi)); e += 1)
                    for (double m : {2.0, 5.0}) {
                        const double v = m * std::pow(10.0, e);
                        if (v >= lo && v <= hi) t.push_back(v);
                    }
        } else {
            const double raw = (hi - lo) / 6, mag = std::pow(10.0, std::floor(std::log10(raw)));
            double step = mag;
            for (double m : {1.0, 2.0, 5.0, 10.0})
                if (raw <= m * mag) {
                    step = m * mag;
                    break;
                }
            for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(v);
        }
        std::sort(t.begin(), t.end());
        return t;
    };
    for (double x : ticks(x0_, x1_, xlog_)) {
        s += fmt::format(R"svg(<line x1="{0:.1f}" y1="{1}" x2="{0:.1f}" y2="{2}" stroke="#e4e4e4"/>)svg", px(x), kTop,
                         h_ - kBottom);
        s += fmt::format(R"svg(<text x="{:.1f}" y="{}" font-size="11" text-anchor="middle">{}</text>)svg", px(x),
                         h_ - kBottom + 16, label(x));
        s += '\n';
    }
    for (double y : ticks(y0_, y1_, ylog_)) {
        s += fmt::format(R"svg(<line x1="{0}" y1="{1:.1f}" x2="{2}" y2="{1:.1f}" stroke="#e4e4e4"/>)svg", kLeft, py(y),
                         w_ - kRight);
        s += fmt::format(R"svg(<text x="{}" y="{:.1f}" font-size="11" text-anchor="end">{}</text>)svg", kLeft - 6, py(y) + 4,
                         label(y));
        s += '\n';
    }
    s += fmt::format(R"svg(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#333"/>)svg", kLeft, kTop,
                     w_ - kLeft - kRight, h_ - kTop - kBottom);
    s += fmt::format(R"svg(<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>)svg",
                     kLeft + (w_ - kLeft - kRight) / 2, h_ - kBottom + 36, xml_escape(x_label_));
    s += fmt::format(R"svg(<text x="16" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>)svg",
                     kTop + (h_ - kTop - kBottom) / 2, kTop + (h_ - kTop - kBottom) / 2, xml_escape(y_label_));
    s += '\n';
    s += body_;
    for (size_t i = 0; i < legend_.size(); ++i) {
        const int x = kLeft + int(i % 2) * (w_ - kLeft - kRight) / 2, y = h_ - 4 + int(i / 2) * kLegendRow;
        s += fmt::format(R"svg(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2"{}/>)svg", x, y - 4, x + 22,
                         y - 4, legend_[i].second, legend_dashed_[i] ? R"svg( stroke-dasharray="6,4")svg" : "");
        s += fmt::format(R"svg(<text x="{}" y="{}" font-size="11">{}</text>)svg", x + 28, y, xml_escape(legend_[i].first));
        s += '\n';
    }
    s += "</svg>\n";
    return s;
}

}  // namespace mf
