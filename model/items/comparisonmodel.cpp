#include "comparisonmodel.h"

#include "comparison.h"
#include "dtype.h"
#include "valuetext.h"

#include <QColor>
#include <QHash>
#include <QStringList>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ckpt {


namespace {

QString statusText(const QString &status)
{
    if (status == QLatin1String("identical")) return ComparisonModel::tr("identical");
    if (status == QLatin1String("close")) return ComparisonModel::tr("within tolerance");
    if (status == QLatin1String("different")) return ComparisonModel::tr("changed");
    if (status == QLatin1String("shape_changed")) return ComparisonModel::tr("other shape");
    if (status == QLatin1String("unreadable")) return ComparisonModel::tr("unreadable");
    if (status == QLatin1String("added")) return ComparisonModel::tr("added");
    if (status == QLatin1String("removed")) return ComparisonModel::tr("removed");
    return {};
}

// "diverged: 1 NaN/Inf mismatch", as `ckpt diff` marks a module whose NaN or infinite values moved.
QString divergedText(qint64 mismatches)
{
    return mismatches == 1 ? ComparisonModel::tr("diverged: 1 NaN/Inf mismatch")
                           : ComparisonModel::tr("diverged: %1 NaN/Inf mismatches").arg(mismatches);
}

// The Change column's sort key, largest first as `ckpt diff` lists modules: diverged rows, then
// by relative L2 (added, removed and reshaped count as infinite; identical as 0).
double changeOrder(bool diverged, double magnitude)
{
    const double m = std::isnan(magnitude) ? 0.0 : std::isinf(magnitude) ? 1.0 : magnitude / (1.0 + magnitude);
    return (diverged ? 2.0 : 0.0) + m;
}

// A dtype as the comparison names it ("float32", "complex64") is floating or complex.
bool floatingName(const std::string &name)
{
    const auto t = dtypeFromTorchName(name);
    return t && (dtypeIsFloating(*t) || dtypeIsComplex(*t));
}

QString figure(double v)
{
    if (std::isnan(v))
        return QStringLiteral("\u2014");
    if (std::isinf(v))
        return QStringLiteral("\u221e");
    return QString::number(v, 'g', 4);
}

QString stripped(const std::string &name, const std::string &prefix)
{
    return QString::fromStdString(name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0
                                      ? name.substr(prefix.size())
                                      : name);
}

} // namespace

QColor changeColour(double magnitude, bool identical, bool structural)
{
    if (structural)
        return QColor(0xd7, 0xc4, 0xf2);
    if (identical || magnitude == 0 || std::isnan(magnitude))
        return {};
    // log10 of the relative change from 1e-7 (barely) to 1 (replaced): pale yellow to red.
    const double t = std::clamp((std::log10(std::max(magnitude, 1e-12)) + 7.0) / 7.0, 0.0, 1.0);
    return QColor::fromHsvF(0.16 * (1.0 - t), 0.15 + 0.55 * t, 1.0);
}

ComparisonModel::ComparisonModel(QObject *parent) : FlatTreeModel(parent) {}

ComparisonModel::~ComparisonModel() = default;

void ComparisonModel::setComparison(std::shared_ptr<const Comparison> comparison)
{
    beginResetModel();
    m_comparison = std::move(comparison);
    m_nodes.clear();
    m_nodes.push_back({});
    if (m_comparison) {
        QHash<QString, int> byPath;
        auto nodeAt = [this, &byPath](const QString &path) {
            int node = 0;
            QString sofar;
            for (const QString &part : path.split(QLatin1Char('.'))) {
                sofar = sofar.isEmpty() ? part : sofar + QLatin1Char('.') + part;
                auto it = byPath.constFind(sofar);
                if (it != byPath.constEnd()) {
                    node = *it;
                    continue;
                }
                Node n;
                n.name = part;
                n.path = sofar;
                n.parent = node;
                n.row = static_cast<int>(m_nodes[static_cast<std::size_t>(node)].children.size());
                n.status = QStringLiteral("module");
                const int id = static_cast<int>(m_nodes.size());
                m_nodes.push_back(std::move(n));
                m_nodes[static_cast<std::size_t>(node)].children.push_back(id);
                byPath.insert(sofar, id);
                node = id;
            }
            return node;
        };
        const Comparison &c = *m_comparison;
        for (std::size_t i = 0; i < c.tensors.size(); ++i) {
            const auto &t = c.tensors[i];
            const int id = nodeAt(stripped(t.name, c.prefixA));
            Node &n = m_nodes[static_cast<std::size_t>(id)];
            n.tensor = static_cast<int>(i);
            n.status = QString::fromStdString(statusName(t.status));
            n.nameA = QString::fromStdString(t.name);
            n.nameB = QString::fromStdString(t.nameB);
            n.dtype = t.dtypeA == t.dtypeB ? QString::fromStdString(t.dtypeA)
                                           : QString::fromStdString(t.dtypeA + " \u2192 " + t.dtypeB);
            n.shape = t.shapeA == t.shapeB ? QString::fromStdString(shapeText(t.shapeA))
                                           : QString::fromStdString(shapeText(t.shapeA) + " \u2192 " + shapeText(t.shapeB));
            n.changed = t.status != TensorComparison::Status::Identical;
            n.level = t.status == TensorComparison::Status::Identical ? 0 : t.status == TensorComparison::Status::Close ? 1 : 2;
            n.structural = t.status == TensorComparison::Status::ShapeChanged || t.status == TensorComparison::Status::Unreadable;
            n.hasFigures = t.status != TensorComparison::Status::ShapeChanged && t.status != TensorComparison::Status::Unreadable;
            n.floating = floatingName(t.dtypeA) || floatingName(t.dtypeB);
            if (n.hasFigures) {
                n.diff = t.diff;
                n.pooled[n.floating ? 1 : 0] = t.diff;
                n.pooledAny[n.floating ? 1 : 0] = true;
            }
        }
        for (const auto &name : c.onlyA) {
            Node &n = m_nodes[static_cast<std::size_t>(nodeAt(stripped(name, c.prefixA)))];
            n.status = QStringLiteral("removed");
            n.nameA = QString::fromStdString(name);
            n.changed = true;
            n.level = 2;
            n.structural = true;
        }
        for (const auto &name : c.onlyB) {
            Node &n = m_nodes[static_cast<std::size_t>(nodeAt(stripped(name, c.prefixB)))];
            n.status = QStringLiteral("added");
            n.nameB = QString::fromStdString(name);
            n.changed = true;
            n.level = 2;
            n.structural = true;
        }
        // Sum figures and changes into every module on the way up (children come after parents).
        for (std::size_t i = m_nodes.size(); i-- > 1;) {
            const Node &n = m_nodes[i];
            Node &p = m_nodes[static_cast<std::size_t>(n.parent)];
            p.changed = p.changed || n.changed;
            p.level = std::max(p.level, n.level);
            p.structural = p.structural || n.structural;
            for (int k = 0; k < 2; ++k)
                if (n.pooledAny[k]) {
                    p.pooled[k].accumulate(n.pooled[k]);
                    p.pooledAny[k] = true;
                }
        }
        // A module's figures: its floating tensors', else its integer ones' (BatchNorm's counter
        // going from 0 to 50 would swamp the weights' relative change).
        for (std::size_t i = 1; i < m_nodes.size(); ++i) {
            Node &n = m_nodes[i];
            if (n.tensor >= 0 || !(n.pooledAny[0] || n.pooledAny[1]))
                continue;
            n.diff = n.pooled[n.pooledAny[1] ? 1 : 0];
            n.hasFigures = true;
        }
    }
    endResetModel();
}

QModelIndex ComparisonModel::indexOfPath(const QString &path) const
{
    for (std::size_t i = 1; i < m_nodes.size(); ++i)
        if (m_nodes[i].path == path)
            return createIndex(m_nodes[i].row, 0, static_cast<quintptr>(i));
    return {};
}

int ComparisonModel::columnCount(const QModelIndex &) const { return ColumnCount; }

QVariant ComparisonModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid())
        return {};
    const Node &n = nodeOf(index);
    const bool structural = n.status == QLatin1String("added") || n.status == QLatin1String("removed") ||
                            n.status == QLatin1String("shape_changed");
    const double magnitude = structural ? std::numeric_limits<double>::infinity()
                             : n.hasFigures ? n.diff.relativeL2()
                                            : std::numeric_limits<double>::quiet_NaN();
    switch (role) {
    case Qt::DisplayRole:
        switch (index.column()) {
        case NameColumn: return n.name;
        case ChangeColumn:
            if (n.diverged())
                return divergedText(n.diff.nonFinite);
            if (n.status == QLatin1String("module"))
                return n.level == 0 ? tr("identical") : n.level == 1 ? tr("within tolerance") : tr("changed");
            return statusText(n.status);
        case MaxAbsColumn: return n.hasFigures ? figure(n.diff.maxAbs) : QString();
        case RelativeColumn: return n.hasFigures ? figure(n.diff.relativeL2()) : QString();
        case CosineColumn:
            return n.hasFigures ? (std::isnan(cosineOf(n.diff)) ? figure(cosineOf(n.diff))
                                                                : QString::fromStdString(cosineText(cosineOf(n.diff))))
                                : QString();
        case DTypeColumn: return n.dtype;
        case ShapeColumn: return n.shape;
        }
        return {};
    case Qt::BackgroundRole: {
        if (n.diverged())
            return valuetext::nonFiniteBackground();
        QColor c = changeColour(magnitude, !n.changed, structural);
        // A module whose only change is structure (a tensor added or removed) has no figures to colour by.
        if (!c.isValid() && n.status == QLatin1String("module") && n.structural)
            c = changeColour(magnitude, false, true);
        return c.isValid() ? QVariant(c) : QVariant();
    }
    case Qt::ForegroundRole:
        if (n.diverged())
            return valuetext::nonFiniteForeground();
        return n.changed ? QVariant(QColor(0x20, 0x20, 0x20)) : QVariant();  // dark text on the pale colours
    case Qt::ToolTipRole:
        if (n.diverged())
            return tr("%1\n%2 where one file holds NaN or Inf and the other does not hold the same value.\n"
                      "Max |\u0394|, relative L2 and cosine are over the positions finite in both files and leave "
                      "%3 out, so they can look small for weights that blew up.")
                .arg(n.path,
                     n.diff.nonFinite == 1 ? tr("1 position") : tr("%1 positions").arg(n.diff.nonFinite),
                     n.diff.nonFinite == 1 ? tr("it") : tr("them"));
        if (n.status == QLatin1String("removed"))
            return tr("only in the first file: %1").arg(n.nameA);
        if (n.status == QLatin1String("added"))
            return tr("only in the second file: %1").arg(n.nameB);
        if (n.tensor >= 0 && n.nameA != n.nameB)
            return tr("%1 \u2194 %2").arg(n.nameA, n.nameB);
        return n.path;
    case Qt::TextAlignmentRole:
        if (index.column() >= MaxAbsColumn && index.column() <= CosineColumn)
            return QVariant(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    case SortRole:
        switch (index.column()) {
        case MaxAbsColumn: return n.hasFigures ? n.diff.maxAbs : -1.0;
        case RelativeColumn: return std::isnan(magnitude) ? -1.0 : magnitude;
        case CosineColumn: return n.hasFigures && !std::isnan(cosineOf(n.diff)) ? cosineOf(n.diff) : 2.0;
        case ChangeColumn:
            // A module whose only change is a tensor added or removed has no figures: it ranks with
            // the structural changes, before the measured ones.
            return changeOrder(n.diverged(), std::isnan(magnitude) && n.structural
                                                 ? std::numeric_limits<double>::infinity()
                                                 : magnitude);
        default: return data(index, Qt::DisplayRole);
        }
    case ChangedRole: return n.changed;
    case MagnitudeRole: return magnitude;
    case StatusRole: return n.status;
    case NameARole: return n.nameA;
    case NameBRole: return n.nameB;
    case PathRole: return n.path;
    case NonFiniteMismatchRole: return static_cast<qlonglong>(n.hasFigures ? n.diff.nonFinite : 0);
    }
    return {};
}

QVariant ComparisonModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal)
        return {};
    if (role == Qt::ToolTipRole) {
        switch (section) {
        case MaxAbsColumn: return tr("Largest |b \u2212 a|");
        case RelativeColumn: return tr("||b \u2212 a|| / ||a||");
        case CosineColumn: return tr("a\u00b7b / (||a|| ||b||)");
        case ChangeColumn:
            return tr("Diverged: a NaN or infinity came, went or moved between the files (NaN/Inf mismatches); "
                      "these rows come first, then the others by relative L2, as ckpt diff lists them.");
        }
        return {};
    }
    if (role != Qt::DisplayRole)
        return {};
    switch (section) {
    case NameColumn: return tr("Module / tensor");
    case ChangeColumn: return tr("Change");
    case MaxAbsColumn: return tr("Max |\u0394|");
    case RelativeColumn: return tr("Relative L2");
    case CosineColumn: return tr("Cosine");
    case DTypeColumn: return tr("DType");
    case ShapeColumn: return tr("Shape");
    }
    return {};
}

} // namespace ckpt
