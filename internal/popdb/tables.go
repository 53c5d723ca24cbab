package popdb

import "strings"

// The reference tables are constant strings, split once per Generator, so the
// package holds no mutable state.

// provinceCodes holds the 63 provinces' 3-digit CCCD codes, concatenated in
// the same order as provinceNames.
const provinceCodes = "001002004006008010011012014015017019020022024025026027030031033034035036037038040042044045046048049051052054056058060062064066067068070072074075077079080082083084086087089091092093094095096"

const provinceNames = "Hà Nội|Hà Giang|Cao Bằng|Bắc Kạn|Tuyên Quang|Lào Cai|Điện Biên|Lai Châu|Sơn La|Yên Bái|Hòa Bình|Thái Nguyên|Lạng Sơn|Quảng Ninh|Bắc Giang|Phú Thọ|Vĩnh Phúc|Bắc Ninh|Hải Dương|Hải Phòng|Hưng Yên|Thái Bình|Hà Nam|Nam Định|Ninh Bình|Thanh Hóa|Nghệ An|Hà Tĩnh|Quảng Bình|Quảng Trị|Thừa Thiên Huế|Đà Nẵng|Quảng Nam|Quảng Ngãi|Bình Định|Phú Yên|Khánh Hòa|Ninh Thuận|Bình Thuận|Kon Tum|Gia Lai|Đắk Lắk|Đắk Nông|Lâm Đồng|Bình Phước|Tây Ninh|Bình Dương|Đồng Nai|Bà Rịa - Vũng Tàu|Hồ Chí Minh|Long An|Tiền Giang|Bến Tre|Trà Vinh|Vĩnh Long|Đồng Tháp|An Giang|Kiên Giang|Cần Thơ|Hậu Giang|Sóc Trăng|Bạc Liêu|Cà Mau"

// ethnicGroups are the 54 officially recognised ethnic groups of Vietnam.
const ethnicGroups = "Kinh|Tày|Thái|Mường|Khmer|Hoa|Nùng|H'Mông|Dao|Gia Rai|Ê Đê|Ba Na|Sán Chay|Chăm|Cơ Ho|Xơ Đăng|Sán Dìu|Hrê|Ra Glai|Mnông|Thổ|Xtiêng|Khơ Mú|Bru - Vân Kiều|Cơ Tu|Giáy|Tà Ôi|Mạ|Giẻ - Triêng|Co|Chơ Ro|Xinh Mun|Hà Nhì|Chu Ru|Lào|La Chí|Kháng|Phù Lá|La Hủ|La Ha|Pà Thẻn|Lự|Ngái|Chứt|Lô Lô|Mảng|Cơ Lao|Bố Y|Cống|Si La|Pu Péo|Rơ Măm|Brâu|Ơ Đu"

const (
	familyNames    = "Nguyễn|Trần|Lê|Phạm|Hoàng|Huỳnh|Phan|Vũ|Võ|Đặng|Bùi|Đỗ|Hồ|Ngô|Dương|Lý|Đinh|Trịnh|Mai|Cao"
	maleMiddles    = "Văn|Đức|Minh|Quang|Hữu|Công|Thành|Xuân|Gia|Anh"
	femaleMiddles  = "Thị|Ngọc|Thu|Thanh|Kim|Bảo|Mỹ|Phương|Khánh|Diệu"
	maleGivens     = "An|Bình|Cường|Dũng|Hùng|Huy|Khoa|Long|Nam|Phong|Quân|Sơn|Thắng|Tuấn|Việt|Hải|Đạt|Hiếu|Kiên|Trung"
	femaleGivens   = "Anh|Châu|Dung|Hà|Hạnh|Hoa|Hương|Lan|Linh|Mai|Ngọc|Nhung|Phương|Thảo|Trang|Vy|Yến|Thủy|Quỳnh|Hằng"
	placeWords     = "Bình|An|Phú|Tân|Hòa|Thạnh|Long|Thuận|Đông|Tây|Nam|Bắc|Trung|Lợi|Hưng|Phước|Thịnh|Khánh|Mỹ|Vĩnh"
	streetNames    = "Lê Lợi|Trần Hưng Đạo|Nguyễn Trãi|Hai Bà Trưng|Lý Thường Kiệt|Quang Trung|Hùng Vương|Điện Biên Phủ|Nguyễn Huệ|Phan Chu Trinh|Lê Duẩn|Võ Thị Sáu"
	religions      = "Không|Không|Không|Không|Phật giáo|Phật giáo|Công giáo|Tin Lành|Cao Đài|Phật giáo Hòa Hảo"
	occupations    = "Nông dân|Công nhân|Giáo viên|Bác sĩ|Kỹ sư|Kinh doanh|Công chức|Sinh viên|Nội trợ|Lái xe|Lập trình viên|Nghỉ hưu"
	educationLevel = "Tiểu học|Trung học cơ sở|Trung học phổ thông|Trung cấp|Cao đẳng|Đại học|Thạc sĩ|Tiến sĩ"
	bloodTypes     = "O+|O+|O+|A+|A+|B+|B+|AB+|O-|A-|B-|AB-"
	criminalNotes  = "Không có án tích|Đã xóa án tích|Có án tích: vi phạm giao thông"
)

// tables are the reference tables split into slices for indexing.
type tables struct {
	provinces, ethnicGroups                             []string
	familyNames, maleMiddles, femaleMiddles             []string
	maleGivens, femaleGivens, placeWords, streetNames   []string
	religions, occupations, educationLevels, bloodTypes []string
	criminalNotes                                       []string
}

func newTables() tables {
	s := func(v string) []string { return strings.Split(v, "|") }
	return tables{
		provinces: s(provinceNames), ethnicGroups: s(ethnicGroups),
		familyNames: s(familyNames), maleMiddles: s(maleMiddles), femaleMiddles: s(femaleMiddles),
		maleGivens: s(maleGivens), femaleGivens: s(femaleGivens), placeWords: s(placeWords),
		streetNames: s(streetNames), religions: s(religions), occupations: s(occupations),
		educationLevels: s(educationLevel), bloodTypes: s(bloodTypes), criminalNotes: s(criminalNotes),
	}
}
