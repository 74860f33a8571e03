#pragma once

#include <QWidget>

#include <memory>

class QLabel;
class QSortFilterProxyModel;
class QStandardItemModel;
class QTableView;

namespace ckpt {

struct SecurityReport;

// What loading the file in Python would do: each global its pickles name, with how this reader
// understood it (data it interprets, an unknown class Python would import, or something that runs
// code), whether torch.load(weights_only=True) accepts it, and structural anomalies; a verdict line
// on top.
class SecurityView : public QWidget {
    Q_OBJECT
public:
    enum Column { NameColumn, VerdictColumn, WeightsOnlyColumn, UsesColumn, OffsetColumn, ReasonColumn, ColumnCount };
    explicit SecurityView(QWidget *parent = nullptr);
    // `torchScript`: the report is a TorchScript archive's, whose __torch__ classes torch.jit.load
    // compiles from the archive's code rather than importing them.
    void setReport(const std::shared_ptr<const SecurityReport> &report, bool torchScript = false);

    QLabel *verdict() const { return m_verdict; }
    QStandardItemModel *model() const { return m_model; }
    QSortFilterProxyModel *proxy() const { return m_proxy; }
    QLabel *anomalies() const { return m_anomalies; }

private:
    QLabel *m_verdict = nullptr;
    QLabel *m_anomalies = nullptr;
    QStandardItemModel *m_model = nullptr;
    QSortFilterProxyModel *m_proxy = nullptr;
    QTableView *m_view = nullptr;
};

} // namespace ckpt
